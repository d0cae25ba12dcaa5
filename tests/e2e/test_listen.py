"""DOCGATE_LISTEN with port 0 binds a free port and logs it, for every spelling README shows."""

from __future__ import annotations

import asyncio
import re
import signal

import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from docgate.server import ListenError, bindable
from tests.e2e.test_cli import DOCGATE, TIMEOUT, _env


@pytest.mark.parametrize(
    ("listen", "logged_host"), [(":0", "[::]"), ("[::]:0", "[::]"), ("0.0.0.0:0", "0.0.0.0")]
)
async def test_port_zero_binds_a_free_port_and_logs_it(
    database_url: str, listen: str, logged_host: str
) -> None:
    env = _env(database_url, DOCGATE_LISTEN=listen)
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    try:
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), TIMEOUT)).decode()
            assert line, "server exited before serving"
            if match := re.search(r"serving on (\S+):(\d+) \(port (\d+)\)", line):
                break
        host, port, again = match.groups()
        assert (host, port) == (logged_host, again)
        assert int(port) > 0
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_an_address_without_a_port_is_refused_by_name() -> None:
    with pytest.raises(ListenError, match="HOST:PORT"):
        bindable("localhost")
