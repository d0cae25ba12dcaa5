"""The door's principal cache (docgate.repositories.principal_cache) never weakens revocation.

Two apps on one database stand for two docgate processes. A revocation takes effect on the
very next call in the process that made it (forgotten synchronously at commit), and in the
other process as soon as PostgreSQL's NOTIFY reaches it (the tests wait for the notification
itself, never for a time). While the listening connection is down, or before it has confirmed
LISTEN, every call reads the database, as without a cache.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import grpc
from docgate.v1 import roles_pb2, roles_pb2_grpc, users_pb2, users_pb2_grpc
from sqlalchemy.engine import make_url

from docgate.bootstrap import App, build_app
from docgate.repositories.principal_cache import PrincipalCache
from docgate.server import start_server
from tests.conftest import settings_for
from tests.support import TestUser, blocked_backends, expect_error, make_user

REVOKE_ADMIN = (
    "DELETE FROM user_roles WHERE user_id = $1 "
    "AND role_id = (SELECT id FROM roles WHERE name = 'admin')"
)
WAIT_S = 30.0  # a bound for a hung test, not a measurement


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def _served(app: App) -> AsyncIterator[grpc.aio.Channel]:
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield channel
    finally:
        await running.stop(None)


async def _until(cache: PrincipalCache, predicate: Callable[[], bool]) -> None:
    await asyncio.wait_for(cache.wait_until(predicate), WAIT_S)


async def _list_users(channel: grpc.aio.Channel, user: TestUser) -> None:
    await users_pb2_grpc.UserServiceStub(channel).ListUsers(
        users_pb2.ListUsersRequest(page_size=1), metadata=user.metadata, timeout=10
    )


async def _cached(app: App, channel: grpc.aio.Channel, user: TestUser) -> None:
    """``user`` (an admin) is served from ``app``'s cache: listening, read once, then a hit."""
    cache = app.principals
    await _list_users(channel, user)  # starts the listener if it is not yet
    await _until(cache, lambda: cache.listening)
    await _list_users(channel, user)  # read and stored
    hits = cache.stats.hits
    await _list_users(channel, user)
    assert cache.stats.hits == hits + 1


async def test_first_calls_read_the_database_until_listen_is_confirmed(database_url: str) -> None:
    app = build_app(settings_for(database_url), database_url)
    admin = await make_user(app, "admin")
    async with _served(app) as channel:
        assert not app.principals.listening
        await _list_users(channel, admin)
        assert app.principals.stats.bypassed == 1
        assert app.principals.stats.hits == 0
        await _cached(app, channel, admin)


async def test_revocation_holds_on_the_next_call_in_the_revoking_process(
    database_url: str,
) -> None:
    app = build_app(settings_for(database_url), database_url)
    revoker, ex_admin = await make_user(app, "admin"), await make_user(app, "admin")
    async with _served(app) as channel:
        await _cached(app, channel, ex_admin)
        await roles_pb2_grpc.RoleServiceStub(channel).RevokeRole(
            roles_pb2.RevokeRoleRequest(user_id=str(ex_admin.id), role="admin"),
            metadata=revoker.metadata,
            timeout=10,
        )
        # The very next call: whether or not the NOTIFY has arrived yet, the commit itself
        # emptied the cache.
        assert app.principals.stats.local_invalidations >= 1
        await expect_error(_list_users(channel, ex_admin), grpc.StatusCode.PERMISSION_DENIED)


async def test_revocation_reaches_another_process_by_notify(database_url: str) -> None:
    first = build_app(settings_for(database_url), database_url)
    second = build_app(settings_for(database_url), database_url)
    revoker, ex_admin = await make_user(first, "admin"), await make_user(first, "admin")
    async with _served(first) as one, _served(second) as two:
        await _cached(second, two, ex_admin)
        cache = second.principals
        notified, local = cache.stats.notifications, cache.stats.local_invalidations
        await roles_pb2_grpc.RoleServiceStub(one).RevokeRole(
            roles_pb2.RevokeRoleRequest(user_id=str(ex_admin.id), role="admin"),
            metadata=revoker.metadata,
            timeout=10,
        )
        await _until(cache, lambda: cache.stats.notifications > notified)
        assert cache.stats.local_invalidations == local  # it came from PostgreSQL
        await expect_error(_list_users(two, ex_admin), grpc.StatusCode.PERMISSION_DENIED)


async def test_a_change_made_outside_docgate_is_notified(database_url: str) -> None:
    app = build_app(settings_for(database_url), database_url)
    ex_admin = await make_user(app, "admin")
    async with _served(app) as channel:
        await _cached(app, channel, ex_admin)
        cache = app.principals
        notified = cache.stats.notifications
        conn = await asyncpg.connect(_dsn(database_url))
        try:
            await conn.execute(REVOKE_ADMIN, ex_admin.id)
        finally:
            await conn.close()
        await _until(cache, lambda: cache.stats.notifications > notified)
        await expect_error(_list_users(channel, ex_admin), grpc.StatusCode.PERMISSION_DENIED)


async def test_killed_listener_bypasses_the_cache(database_url: str) -> None:
    app = build_app(settings_for(database_url), database_url)
    ex_admin, other = await make_user(app, "admin"), await make_user(app, "admin")
    cache = app.principals
    async with _served(app) as channel:
        await _cached(app, channel, ex_admin)
        cache.listener.retry_seconds = 3600.0  # stays down until retry_now()
        pid = cache.listener.backend_pid
        assert pid is not None
        conn = await asyncpg.connect(_dsn(database_url))
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            await _until(cache, lambda: not cache.listening)
            # A change no listener hears: the next call must read it anyway.
            await conn.execute(REVOKE_ADMIN, ex_admin.id)
        finally:
            await conn.close()
        bypassed, hits = cache.stats.bypassed, cache.stats.hits
        await expect_error(_list_users(channel, ex_admin), grpc.StatusCode.PERMISSION_DENIED)
        await _list_users(channel, other)
        await _list_users(channel, other)
        assert cache.stats.bypassed == bypassed + 3
        assert cache.stats.hits == hits  # nothing served from memory meanwhile
        cache.listener.retry_seconds = 0.05
        cache.listener.retry_now()
        await _cached(app, channel, other)  # and back in use once LISTEN is confirmed again


async def test_cache_off_reads_every_call(database_url: str) -> None:
    app = build_app(settings_for(database_url, principal_cache=False), database_url)
    admin = await make_user(app, "admin")
    async with _served(app) as channel:
        for _ in range(3):
            await _list_users(channel, admin)
        assert app.principals.stats.bypassed == 3
        assert app.principals.stats.hits == app.principals.stats.misses == 0
        assert not app.principals.listening
        assert app.principals.listener.backend_pid is None


async def test_a_read_in_flight_during_an_invalidation_is_not_stored(database_url: str) -> None:
    """The read began before a change and ends after its invalidation: it answers its own call
    but is not kept (else the stale roles would outlive the notification)."""
    app = build_app(settings_for(database_url), database_url)
    admin = await make_user(app, "admin")
    cache = app.principals
    async with _served(app) as channel:
        await _list_users(channel, admin)
        await _until(cache, lambda: cache.listening)
        conn = await asyncpg.connect(_dsn(database_url))
        try:
            tx = conn.transaction()
            await tx.start()
            await conn.execute("LOCK TABLE user_roles IN ACCESS EXCLUSIVE MODE")
            call = asyncio.ensure_future(_list_users(channel, admin))
            await blocked_backends(database_url)
            cache.invalidate(uuid.uuid4())  # any invalidation, e.g. someone else's change
            await tx.commit()
        finally:
            await conn.close()
        await call
        assert admin.id not in cache._entries
