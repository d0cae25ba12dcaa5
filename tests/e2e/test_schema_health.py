"""A running server whose schema is taken away or left behind says NOT_SERVING, logs why, and
serves again once the schema is back at the revision it was built for."""

from __future__ import annotations

import asyncio
import logging

import grpc
import grpc.aio
import pytest
from docgate.v1 import users_pb2, users_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from docgate.bootstrap import build_app
from docgate.db import migrations
from docgate.server import start_server
from tests.conftest import settings_for
from tests.support import error_info, make_user

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _until(stub: health_pb2_grpc.HealthStub, wanted: int) -> None:
    """Poll health (the watcher re-checks every 0.2 s here) until it reports ``wanted``."""
    for _ in range(150):
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        if reply.status == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"health never became {wanted}")


def _said(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() for r in caplog.records if r.name == "docgate.server")


async def test_health_follows_the_schema(
    scratch_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = scratch_database_url
    head = await migrations.upgrade(url)
    first = "0001"  # any revision before head
    app = build_app(settings_for(url, health_interval_seconds=0.2), url)
    user = await make_user(app, "free_user")
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            with caplog.at_level(logging.INFO, logger="docgate"):
                await _until(health, SERVING)
                await migrations.downgrade(url, "base")
                await _until(health, NOT_SERVING)
                assert _said(caplog, "NOT_SERVING: the database has no docgate schema")
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
                        users_pb2.GetCurrentUserRequest(), metadata=user.metadata, timeout=10
                    )
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                info = error_info(caught.value)
                assert info is not None and info.reason == "SCHEMA_MISMATCH"
                await migrations.upgrade(url, first)
                await _until(health, NOT_SERVING)
                for _ in range(50):
                    if _said(caplog, f"schema is at {first}, this build expects {head}"):
                        break
                    await asyncio.sleep(0.1)
                assert _said(caplog, f"schema is at {first}, this build expects {head}")
                await migrations.upgrade(url)
                await _until(health, SERVING)
                assert _said(caplog, f"health: SERVING (database schema at {head})")
    finally:
        await running.stop(None)
