"""docgate.edge.metrics with docgate.edge.batches: calls note their updates, a batch applies
them — summed, none lost, none twice — and a scrape applies what is noted before it reads."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from prometheus_client import generate_latest

from docgate.edge import batches
from docgate.edge.batches import Batcher
from docgate.edge.metrics import MethodMetrics, Metrics
from tests.support import Samples, sample_value, samples_of

PATH = "/docgate.v1.UserService/GetCurrentUser"
LABELS = {"grpc_type": "unary", "grpc_service": "docgate.v1.UserService"}


def _scrape(metrics: Metrics) -> Samples:
    return samples_of(generate_latest(metrics.registry).decode())


def _call(method: MethodMetrics, code: grpc.StatusCode = grpc.StatusCode.OK) -> None:
    method.start()
    method.receive()
    method.send()
    method.finished(code, 0.002)


def _handled(samples: Samples, code: str) -> float:
    return sample_value(
        samples, "grpc_server_handled_total", grpc_method="GetCurrentUser", grpc_code=code, **LABELS
    )


async def test_a_scrape_from_another_thread_applies_what_calls_noted_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batches, "DELAY_SECONDS", 3600.0)  # only the scrape can write them
    metrics = Metrics()
    method = metrics.for_method(PATH, "unary")
    for _ in range(3):
        _call(method)
    _call(method, grpc.StatusCode.PERMISSION_DENIED)
    metrics.pool_acquired(0.0001, lambda: (4, 2))
    assert method.started._value.get() == 0  # noted, not yet applied
    samples = await asyncio.to_thread(_scrape, metrics)  # as the /metrics thread scrapes
    mine = {"grpc_method": "GetCurrentUser", **LABELS}
    assert sample_value(samples, "grpc_server_started_total", **mine) == 4
    assert sample_value(samples, "grpc_server_msg_received_total", **mine) == 4
    assert sample_value(samples, "grpc_server_msg_sent_total", **mine) == 4
    assert _handled(samples, "OK") == 3
    assert _handled(samples, "PermissionDenied") == 1
    assert sample_value(samples, "grpc_server_handling_seconds_count", **mine) == 4
    assert (
        sample_value(
            samples,
            "docgate_permission_denied_total",
            grpc_service="docgate.v1.UserService",
            grpc_method="GetCurrentUser",
        )
        == 1
    )
    assert sample_value(samples, "docgate_db_pool_checked_out") == 4
    assert sample_value(samples, "docgate_db_pool_overflow") == 2
    assert sample_value(samples, "docgate_db_pool_wait_seconds_count") == 1
    again = await asyncio.to_thread(_scrape, metrics)
    assert _handled(again, "OK") == 3  # applied once, not once per scrape


async def test_a_full_batch_is_applied_on_the_next_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches, "DELAY_SECONDS", 3600.0)
    metrics = Metrics()
    method = metrics.for_method(PATH, "unary")
    for _ in range(batches.SIZE):
        _call(method)
    assert method.started._value.get() == 0
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert method.started._value.get() == batches.SIZE
    assert metrics.handling.labels(
        "unary", "docgate.v1.UserService", "GetCurrentUser"
    )._sum.get() == (pytest.approx(batches.SIZE * 0.002))


async def test_the_pool_gauges_show_the_pool_as_each_batch_and_scrape_finds_it() -> None:
    metrics = Metrics()
    pool = {"checked_out": 3, "overflow": -2}  # SQLAlchemy's overflow is negative below size

    def state() -> tuple[int, int]:
        return pool["checked_out"], pool["overflow"]

    metrics.pool_acquired(0.001, state)
    samples = await asyncio.to_thread(_scrape, metrics)
    assert sample_value(samples, "docgate_db_pool_checked_out") == 3
    assert sample_value(samples, "docgate_db_pool_overflow") == 0
    pool["checked_out"] = 0
    metrics.pool_released(state)  # the last call gave its connection back: a batch follows
    for _ in range(200):
        if metrics.pool_checked_out._value.get() == 0:
            break
        await asyncio.sleep(batches.DELAY_SECONDS / 2)
    assert metrics.pool_checked_out._value.get() == 0
    pool["overflow"] = 2  # read at scrape time, with nothing noted since
    assert sample_value(await asyncio.to_thread(_scrape, metrics), "docgate_db_pool_overflow") == 2


async def test_the_delay_applies_a_lone_call() -> None:
    metrics = Metrics()
    method = metrics.for_method(PATH, "unary")
    _call(method)
    for _ in range(200):
        if method.started._value.get():
            break
        await asyncio.sleep(batches.DELAY_SECONDS / 2)
    assert method.started._value.get() == 1
    assert _handled(_scrape(metrics), "OK") == 1


def test_outside_a_loop_notes_are_applied_at_once() -> None:
    metrics = Metrics()
    method = metrics.for_method(PATH, "unary")
    _call(method)
    assert method.started._value.get() == 1
    assert _handled(_scrape(metrics), "OK") == 1


async def test_a_failing_writer_costs_the_others_nothing(caplog: pytest.LogCaptureFixture) -> None:
    batcher = Batcher()
    written: list[str] = []

    def broken() -> None:
        raise RuntimeError("disk full")

    batcher.add_writer(broken)
    batcher.add_writer(lambda: written.append("second"))
    with caplog.at_level(logging.ERROR, logger="docgate.edge.batches"):
        batcher.flush()
    assert written == ["second"]
    assert "a batch writer failed" in caplog.text
