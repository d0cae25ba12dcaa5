"""Graceful stop: new calls are refused, a call already in flight finishes, nothing leaks."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import grpc.aio
import pytest
from docgate.v1 import users_pb2, users_pb2_grpc
from sqlalchemy.engine import make_url

from docgate.bootstrap import build_app
from docgate.server import start_server
from tests.conftest import settings_for
from tests.support import make_user

REQUEST = users_pb2.GetCurrentUserRequest()


async def _wait_until_blocked(conn: asyncpg.Connection) -> None:
    """Until a docgate query waits on our lock (the call is provably in flight)."""
    for _ in range(200):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'docgate' AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the call never reached the database")


async def test_stop_refuses_new_calls_and_finishes_in_flight_ones(database_url: str) -> None:
    app = build_app(settings_for(database_url), database_url)
    running = await start_server(app, "127.0.0.1:0")
    user = await make_user(app, "free_user")
    target = f"127.0.0.1:{running.port}"
    locker = await asyncpg.connect(make_url(database_url).render_as_string(hide_password=False))
    try:
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        async with grpc.aio.insecure_channel(target) as channel:
            stub = users_pb2_grpc.UserServiceStub(channel)
            in_flight = asyncio.ensure_future(
                stub.GetCurrentUser(REQUEST, metadata=user.metadata, timeout=30)
            )
            watcher = await asyncpg.connect(
                make_url(database_url).render_as_string(hide_password=False)
            )
            try:
                await _wait_until_blocked(watcher)
            finally:
                await watcher.close()
            stopping = asyncio.create_task(running.stop(grace=20))
            await asyncio.sleep(0.2)  # let stop() begin refusing
            async with grpc.aio.insecure_channel(target) as late_channel:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await users_pb2_grpc.UserServiceStub(late_channel).GetCurrentUser(
                        REQUEST, metadata=user.metadata, timeout=2
                    )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            await lock.rollback()  # release: the in-flight call may now finish
            reply = await in_flight
            assert reply.username == user.username
            await stopping
    finally:
        await locker.close()
        await running.stop(None)  # no-op after a clean stop; frees the port if the test failed
    assert app.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
