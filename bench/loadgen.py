"""The load generator: closed-loop grpc.aio callers in worker processes.

Each worker process opens one channel and keeps ``concurrency`` calls in flight. Requests are
pre-serialised bytes and responses stay bytes (no protobuf work in the hot loop), so the client
takes as little of the two cores as a Python client can.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field

import grpc
import grpc.aio

Metadata = tuple[tuple[str, str], ...]
Call = tuple[bytes, Metadata]


@dataclass(frozen=True)
class LoadSpec:
    target: str
    method: str
    calls: tuple[Call, ...]
    concurrency: int
    warmup_s: float
    duration_s: float
    # Wall-clock (time.time) instant at which every worker starts, so processes overlap.
    start_at: float
    timeout_s: float = 10.0
    # Where in ``calls`` this worker starts, so two workers do not send the same sequence.
    offset: int = 0


@dataclass
class LoadResult:
    # Seconds per call that started inside the measured window, array('d') bytes.
    latencies: bytes = b""
    errors: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass
class _Window:
    measure_from: float
    end: float
    latencies: array[float] = field(default_factory=lambda: array("d"))
    errors: Counter[str] = field(default_factory=Counter)


async def _caller(
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
    spec: LoadSpec,
    window: _Window,
    index: int,
) -> None:
    calls = spec.calls
    position = spec.offset + index * 7919
    clock = time.perf_counter
    while (started := clock()) < window.end:
        request, metadata = calls[position % len(calls)]
        position += 1
        try:
            await call(request, metadata=metadata, timeout=spec.timeout_s)
        except grpc.aio.AioRpcError as error:
            if started >= window.measure_from:
                window.errors[error.code().name] += 1
            continue
        if started >= window.measure_from:
            window.latencies.append(clock() - started)


async def _drive(spec: LoadSpec) -> LoadResult:
    async with grpc.aio.insecure_channel(spec.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=10)
        call = channel.unary_unary(spec.method, request_serializer=None, response_deserializer=None)
        await asyncio.sleep(max(0.0, spec.start_at - time.time()))
        now = time.perf_counter()
        measure_from = now + spec.warmup_s
        window = _Window(measure_from, measure_from + spec.duration_s)
        callers = [_caller(call, spec, window, i) for i in range(spec.concurrency)]
        await asyncio.wait_for(
            asyncio.gather(*callers), timeout=spec.warmup_s + spec.duration_s + spec.timeout_s + 5
        )
    return LoadResult(window.latencies.tobytes(), dict(window.errors), spec.duration_s)


def run_load(spec: LoadSpec) -> LoadResult:
    """Entry point in a worker process."""
    return asyncio.run(_drive(spec))


def call_once(target: str, method: str, call: Call, timeout_s: float = 10.0) -> bytes:
    """One blocking call (probes and sanity checks); raises grpc.RpcError on failure."""
    with grpc.insecure_channel(target) as channel:
        request, metadata = call
        multicallable = channel.unary_unary(
            method, request_serializer=None, response_deserializer=None
        )
        response: bytes = multicallable(request, metadata=metadata, timeout=timeout_s)
        return response
