"""Faults: a bug, a killed connection, a client deadline mid-query, an exhausted pool. Each
answers a clear status, leaks nothing, and the next call works."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import grpc
import grpc.aio
import pytest
from docgate.v1 import users_pb2, users_pb2_grpc
from sqlalchemy.engine import make_url

from docgate.bootstrap import App, build_app
from docgate.server import RunningServer, start_server
from docgate.services.users import UserService
from tests.conftest import settings_for
from tests.support import (
    TestUser,
    blocked_backends,
    error_info,
    make_user,
    pool_drained,
    with_servicer,
)

REQUEST = users_pb2.GetCurrentUserRequest()


def _raw(url: str) -> str:
    return make_url(url).render_as_string(hide_password=False)


@asynccontextmanager
async def _serving(app: App) -> AsyncIterator[tuple[RunningServer, users_pb2_grpc.UserServiceStub]]:
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield running, users_pb2_grpc.UserServiceStub(channel)
    finally:
        await running.stop(None)


@asynccontextmanager
async def _users_locked(url: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold an exclusive lock on users: every authenticated call blocks in the database."""
    conn = await asyncpg.connect(_raw(url))
    tx = conn.transaction()
    await tx.start()
    await conn.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    try:
        yield conn
    finally:
        await tx.rollback()
        await conn.close()


async def _idle_in_transaction(url: str) -> int:
    conn = await asyncpg.connect(_raw(url))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'docgate' AND state LIKE 'idle in transaction%'"
        )
        return count
    finally:
        await conn.close()


async def _works(stub: users_pb2_grpc.UserServiceStub, user: TestUser) -> None:
    reply = await stub.GetCurrentUser(REQUEST, metadata=user.metadata, timeout=10)
    assert reply.username == user.username


async def test_a_bug_answers_internal_without_its_text(database_url: str) -> None:
    class Broken(UserService):
        async def GetCurrentUser(self, request: Any, context: Any) -> users_pb2.User:
            raise ZeroDivisionError("secret-internal-detail")

    app = build_app(settings_for(database_url), database_url)
    app = with_servicer(app, "docgate.v1.UserService", Broken(app.uow))
    user = await make_user(app, "free_user")
    async with _serving(app) as (_, stub):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetCurrentUser(REQUEST, metadata=user.metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error"
    assert "secret" not in str(caught.value.trailing_metadata())


async def test_killed_connection_is_unavailable_then_recovers(database_url: str) -> None:
    app = build_app(settings_for(database_url), database_url)
    user = await make_user(app, "free_user")
    async with _serving(app) as (_, stub):
        async with _users_locked(database_url) as locker:
            call = asyncio.ensure_future(
                stub.GetCurrentUser(REQUEST, metadata=user.metadata, timeout=30)
            )
            for pid in await blocked_backends(database_url):
                await locker.execute("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        info = error_info(caught.value)
        assert info is not None
        assert info.reason == "DATABASE_UNAVAILABLE"
        for _ in range(3):
            await _works(stub, user)
    assert app.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_client_deadline_mid_query_rolls_back_and_frees_the_connection(
    database_url: str,
) -> None:
    app = build_app(settings_for(database_url), database_url)
    user = await make_user(app, "free_user")
    async with _serving(app) as (_, stub):
        async with _users_locked(database_url):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetCurrentUser(REQUEST, metadata=user.metadata, timeout=0.5)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # The handler was cancelled: its query must not stay queued behind our lock.
            assert await pool_drained(app)
        await _works(stub, user)
    assert await _idle_in_transaction(database_url) == 0


async def test_exhausted_pool_answers_unavailable_then_recovers(database_url: str) -> None:
    settings = settings_for(database_url, pool_size=1, max_overflow=0, pool_timeout=0.5)
    app = build_app(settings, database_url)
    user = await make_user(app, "free_user")
    async with _serving(app) as (_, stub):
        async with _users_locked(database_url):
            holder = asyncio.ensure_future(
                stub.GetCurrentUser(REQUEST, metadata=user.metadata, timeout=30)
            )
            await blocked_backends(database_url)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetCurrentUser(REQUEST, metadata=user.metadata, timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert (await holder).username == user.username
        await _works(stub, user)


async def test_database_restart_costs_at_most_one_failed_call(database_url: str) -> None:
    """Every pooled connection dies at once (as in a database restart); pre-ping is off. The
    first call that meets a dead connection answers UNAVAILABLE and marks the whole pool stale,
    so every later call reconnects and succeeds."""
    app = build_app(settings_for(database_url, pool_pre_ping=False), database_url)
    user = await make_user(app, "free_user")
    backends = (
        "SELECT pid FROM pg_stat_activity "
        "WHERE application_name = 'docgate' AND datname = current_database()"
    )
    killer = await asyncpg.connect(_raw(database_url))
    try:
        others = {r["pid"] for r in await killer.fetch(backends)}  # the shared test app's
        async with _serving(app) as (_, stub):
            await asyncio.gather(*(_works(stub, user) for _ in range(8)))  # warm the pool
            ours = {r["pid"] for r in await killer.fetch(backends)} - others
            assert len(ours) > 1
            for pid in ours:
                await killer.execute("SELECT pg_terminate_backend($1)", pid)
            failures = []
            for _ in range(10):
                try:
                    await _works(stub, user)
                except grpc.aio.AioRpcError as error:
                    failures.append(error.code())
            assert failures in ([], [grpc.StatusCode.UNAVAILABLE])
    finally:
        await killer.close()


async def test_statement_timeout_is_deadline_exceeded_not_unavailable(database_url: str) -> None:
    """UNAVAILABLE would invite every client's automatic retry of a query that will time out
    again; a statement timeout (SQLSTATE 57014) answers DEADLINE_EXCEEDED."""
    app = build_app(settings_for(database_url, statement_timeout_ms=300), database_url)
    user = await make_user(app, "free_user")
    async with _serving(app) as (_, stub), _users_locked(database_url):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetCurrentUser(REQUEST, metadata=user.metadata, timeout=30)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    info = error_info(caught.value)
    assert info is not None
    assert info.reason == "STATEMENT_TIMEOUT"
    assert await pool_drained(app)


async def test_a_saturated_pool_is_busy_not_down(database_url: str) -> None:
    """Health decides "database down" on a connection of its own (issue 11 finding 13): with
    every pooled connection held by calls waiting on a lock, it stays SERVING."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    settings = settings_for(
        database_url, pool_size=1, max_overflow=0, pool_timeout=30.0, health_interval_seconds=0.1
    )
    app = build_app(settings, database_url)
    user = await make_user(app, "free_user")
    async with _serving(app) as (running, stub):
        async with _users_locked(database_url):
            waiting = [
                asyncio.ensure_future(
                    stub.GetCurrentUser(REQUEST, metadata=user.metadata, timeout=30)
                )
                for _ in range(3)
            ]
            await blocked_backends(database_url)  # the pool's one connection waits
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                for _ in range(25):  # past the health check's 2 s timeout, pool exhausted
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                    assert reply.status == health_pb2.HealthCheckResponse.SERVING
                    await asyncio.sleep(0.2)
        for call in waiting:  # the lock is gone: every waiting call completes
            assert (await call).username == user.username
