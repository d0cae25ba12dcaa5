"""Prometheus metrics through a real server: known calls, then a scrape of /metrics parsed with
prometheus_client.parser, counter by counter (docgate.edge.metrics)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid

import grpc
import grpc.aio
import jwt
import pytest
from docgate.v1 import documents_pb2, documents_pb2_grpc, users_pb2, users_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from docgate import runtime
from docgate.bootstrap import build_app
from docgate.config import Settings
from docgate.edge.metrics import auth_reason, go_code
from docgate.server import ListenError, start_server
from tests.conftest import settings_for
from tests.e2e.test_faults import _users_locked
from tests.support import (
    TEST_SECRET,
    Samples,
    blocked_backends,
    expect_error,
    make_user,
    sample_value,
    samples_of,
)

USERS = "docgate.v1.UserService"


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return samples_of(reply.read().decode())


def _method(service: str, method: str, **more: str) -> dict[str, str]:
    return {"grpc_type": "unary", "grpc_service": service, "grpc_method": method, **more}


def _expired(user_id: uuid.UUID) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "iat": now - 7200, "exp": now - 3600}
    return jwt.encode(claims, TEST_SECRET, "HS256")


async def test_counters_after_known_calls(database_url: str) -> None:
    app = build_app(settings_for(database_url, metrics_listen="127.0.0.1:0"), database_url)
    free = await make_user(app, "free_user")
    running = await start_server(app, "127.0.0.1:0")
    try:
        assert running.metrics is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            users = users_pb2_grpc.UserServiceStub(channel)
            docs = documents_pb2_grpc.DocumentServiceStub(channel)
            me = users_pb2.GetCurrentUserRequest()
            for _ in range(3):
                await users.GetCurrentUser(me, metadata=free.metadata, timeout=10)
            await expect_error(
                users.GetCurrentUser(me, timeout=10), grpc.StatusCode.UNAUTHENTICATED
            )
            expired = (("authorization", f"Bearer {_expired(free.id)}"),)
            await expect_error(
                users.GetCurrentUser(me, metadata=expired, timeout=10),
                grpc.StatusCode.UNAUTHENTICATED,
            )
            await expect_error(
                users.ListUsers(users_pb2.ListUsersRequest(), metadata=free.metadata, timeout=10),
                grpc.StatusCode.PERMISSION_DENIED,
            )
            missing = documents_pb2.GetDocumentRequest(id=str(uuid.uuid4()))
            await expect_error(
                docs.GetDocument(missing, metadata=free.metadata, timeout=10),
                grpc.StatusCode.NOT_FOUND,
            )
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        samples = await asyncio.to_thread(_scrape, running.metrics.port)
    finally:
        await running.stop(None)

    current = _method(USERS, "GetCurrentUser")
    assert sample_value(samples, "grpc_server_started_total", **current) == 5
    assert sample_value(samples, "grpc_server_handled_total", **current, grpc_code="OK") == 3
    assert (
        sample_value(samples, "grpc_server_handled_total", **current, grpc_code="Unauthenticated")
        == 2
    )
    assert sample_value(samples, "grpc_server_handling_seconds_count", **current) == 5
    assert sample_value(samples, "grpc_server_handling_seconds_bucket", **current, le="+Inf") == 5
    assert sample_value(samples, "grpc_server_msg_received_total", **current) == 5
    assert sample_value(samples, "grpc_server_msg_sent_total", **current) == 3
    get = _method("docgate.v1.DocumentService", "GetDocument", grpc_code="NotFound")
    assert sample_value(samples, "grpc_server_handled_total", **get) == 1
    health = _method("grpc.health.v1.Health", "Check", grpc_code="OK")
    assert sample_value(samples, "grpc_server_handled_total", **health) == 1

    denied = {"grpc_service": USERS, "grpc_method": "ListUsers"}
    assert sample_value(samples, "docgate_permission_denied_total", **denied) == 1
    assert sample_value(samples, "docgate_permission_denied_total", **_method(USERS, "x")) == 0
    assert sample_value(samples, "docgate_auth_failures_total", reason="missing_token") == 1
    assert sample_value(samples, "docgate_auth_failures_total", reason="expired") == 1

    # The five calls that got past the token each took one pooled connection, and gave it back.
    assert sample_value(samples, "docgate_db_pool_wait_seconds_count") == 5
    assert sample_value(samples, "docgate_db_pool_checked_out") == 0
    assert sample_value(samples, "docgate_db_pool_size") == app.settings.pool_size
    assert sample_value(samples, "docgate_db_pool_timeouts_total") == 0
    assert sample_value(samples, "docgate_health_status", service="") == 1
    assert sample_value(samples, "docgate_health_status", service=USERS) == 1
    builds = [labels for name, labels in samples if name == "docgate_build_info"]
    assert len(builds) == 1
    assert dict(builds[0])["grpc_version"] == grpc.__version__


async def test_pool_timeouts_and_checked_out_connections(database_url: str) -> None:
    settings = settings_for(
        database_url, metrics_listen="127.0.0.1:0", pool_size=1, max_overflow=0, pool_timeout=0.5
    )
    app = build_app(settings, database_url)
    user = await make_user(app, "free_user")
    running = await start_server(app, "127.0.0.1:0")
    try:
        assert running.metrics is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = users_pb2_grpc.UserServiceStub(channel)
            me = users_pb2.GetCurrentUserRequest()
            async with _users_locked(database_url):
                holder = asyncio.ensure_future(stub.GetCurrentUser(me, metadata=user.metadata))
                await blocked_backends(database_url)
                during = await asyncio.to_thread(_scrape, running.metrics.port)
                await expect_error(
                    stub.GetCurrentUser(me, metadata=user.metadata, timeout=10),
                    grpc.StatusCode.UNAVAILABLE,
                )
            await holder
        after = await asyncio.to_thread(_scrape, running.metrics.port)
    finally:
        await running.stop(None)
    assert sample_value(during, "docgate_db_pool_checked_out") == 1
    assert sample_value(after, "docgate_db_pool_checked_out") == 0
    assert sample_value(after, "docgate_db_pool_timeouts_total") == 1
    # The timed-out wait is in the histogram, above the pool timeout's bucket boundary.
    assert sample_value(after, "docgate_db_pool_wait_seconds_count") == 2
    assert sample_value(after, "docgate_db_pool_wait_seconds_bucket", le="0.25") <= 1
    current = _method(USERS, "GetCurrentUser", grpc_code="Unavailable")
    assert sample_value(after, "grpc_server_handled_total", **current) == 1


async def test_metrics_listen_off_means_no_metrics(database_url: str) -> None:
    app = build_app(settings_for(database_url), database_url)
    running = await start_server(app, "127.0.0.1:0")
    try:
        assert app.metrics is None
        assert running.metrics is None
    finally:
        await running.stop(None)


async def test_a_taken_metrics_address_refuses_to_start(database_url: str) -> None:
    first = build_app(settings_for(database_url, metrics_listen="127.0.0.1:0"), database_url)
    running = await start_server(first, "127.0.0.1:0")
    try:
        assert running.metrics is not None
        taken = f"127.0.0.1:{running.metrics.port}"
        second = build_app(settings_for(database_url, metrics_listen=taken), database_url)
        with pytest.raises(ListenError, match="cannot serve metrics"):
            await start_server(second, "127.0.0.1:0")
        await second.close()
    finally:
        await running.stop(None)


def test_dev_mode_defaults_to_9464_and_never_replaces_a_set_address() -> None:
    dev = runtime.with_dev_metrics(Settings(database_url=None))
    assert dev.metrics_listen in (runtime.DEV_METRICS_LISTEN, "127.0.0.1:0")
    chosen = Settings(database_url=None, metrics_listen="127.0.0.1:9999")
    assert runtime.with_dev_metrics(chosen).metrics_listen == "127.0.0.1:9999"
    external = Settings(database_url="postgresql://x@localhost/x")
    assert runtime.with_dev_metrics(external).metrics_listen is None


def test_codes_are_spelled_as_go_spells_them() -> None:
    assert [go_code(c) for c in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED)] == [
        "OK",
        "Canceled",
    ]
    assert go_code(grpc.StatusCode.PERMISSION_DENIED) == "PermissionDenied"
    assert go_code(grpc.StatusCode.DEADLINE_EXCEEDED) == "DeadlineExceeded"


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        ("token expired", "expired"),
        ("bad signature", "bad_signature"),
        ("user 0b0e… unknown or inactive", "unknown_or_inactive_user"),
        ("token lacks the required claim 'exp'", "missing_claim"),
        ("malformed token (not a JWT)", "malformed_token"),
        ("no authorization metadata", "missing_token"),
        ("something new", "other"),
    ],
)
def test_auth_failure_reasons_are_bounded(cause: str, reason: str) -> None:
    assert auth_reason(cause) == reason
