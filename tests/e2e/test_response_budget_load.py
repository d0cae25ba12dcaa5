"""The response budget under load: parallel heavy BatchGets stay within a memory bound while
another caller is served. Asserts memory, never time (the p50 is printed: pytest -s)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import grpc
from docgate.v1 import documents_pb2 as pb

from tests.conformance.support import Stub, create
from tests.e2e.test_response_budget import _served
from tests.support import TestUser, expect_error


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _latencies(stub: Stub, user: TestUser, doc_id: str, stop: asyncio.Event) -> list[float]:
    taken: list[float] = []
    while not stop.is_set() or len(taken) < 20:
        start = time.perf_counter()
        await stub.GetDocument(pb.GetDocumentRequest(id=doc_id), metadata=user.metadata)
        taken.append(time.perf_counter() - start)
    return taken


async def test_parallel_heavy_batch_gets_stay_bounded(database_url: str) -> None:
    """8 callers BatchGet 100x the same ~1 MiB document (refused at the 4 MiB default) and
    3x it (served), while another caller reads a small document. Asserts the RSS bound and
    that the other caller is served; prints its p50 with and without the load (pytest -s)."""
    async with _served(database_url) as (stub, heavy, other):
        big = await create(stub, heavy, content="x" * 1_000_000)
        small = await create(stub, other, content="small")
        idle_stop = asyncio.Event()
        idle_stop.set()
        idle = await _latencies(stub, other, small.id, idle_stop)

        async def one_heavy_caller() -> None:
            for _ in range(4):
                await expect_error(
                    stub.BatchGetDocuments(
                        pb.BatchGetDocumentsRequest(ids=[big.id] * 100), metadata=heavy.metadata
                    ),
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "RESPONSE_TOO_LARGE",
                )
                served = await stub.BatchGetDocuments(
                    pb.BatchGetDocumentsRequest(ids=[big.id] * 3), metadata=heavy.metadata
                )
                assert len(served.documents) == 3

        baseline, peak, stop = _rss(), _rss(), asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _rss())
                await asyncio.sleep(0.005)

        sampler = asyncio.ensure_future(sample())
        reader = asyncio.ensure_future(_latencies(stub, other, small.id, stop))
        try:
            await asyncio.gather(*(one_heavy_caller() for _ in range(8)))
        finally:
            stop.set()
        loaded = await reader
        await sampler
        growth = peak - baseline
        print(
            f"\nRSS growth {growth / 2**20:.1f} MiB; GetDocument p50 idle "
            f"{statistics.median(idle) * 1000:.1f} ms, under load "
            f"{statistics.median(loaded) * 1000:.1f} ms ({len(loaded)} calls)"
        )
        assert growth <= 200 * 2**20
