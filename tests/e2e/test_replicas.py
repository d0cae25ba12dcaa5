"""Read replicas on a real primary and streaming standby (tests/replication.py): reads land on
the standby and the caller's identity never does, the consistency token gives read-your-writes
while replay is paused, a lagging or stopped standby is skipped without a failed call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb
from docgate.v1 import documents_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from docgate.bootstrap import App, build_app
from docgate.db import migrations
from docgate.db.consistency import HEADER, token_from
from docgate.db.embedded import ensure_database
from docgate.server import RunningServer, start_server
from tests.conftest import settings_for
from tests.replication import Pair, primary_position, start_pair, wait_replayed
from tests.support import TestUser, expect_error, make_user

Stub = documents_pb2_grpc.DocumentServiceStub

_DOCUMENT_READS = "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query ~* $1"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    servers = start_pair(Path(tmp_path_factory.mktemp("repl")))
    yield servers
    servers.stop()


@dataclass(frozen=True)
class Urls:
    primary: str
    replica: str


@pytest.fixture(scope="module")
async def urls(pair: Pair) -> Urls:
    primary = await ensure_database(pair.primary.url(), "docgate")
    await migrations.upgrade(primary)
    conn = await asyncpg.connect(primary)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    finally:
        await conn.close()
    return Urls(primary, pair.replica.url("docgate"))


@asynccontextmanager
async def serving(
    urls: Urls, **overrides: object
) -> AsyncIterator[tuple[App, RunningServer, Stub]]:
    overrides.setdefault("database_read_urls", urls.replica)
    settings = settings_for(urls.primary, **overrides)
    app = build_app(settings, urls.primary)
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield app, running, Stub(channel)
    finally:
        await running.stop(None)


async def _until(condition: object, what: str) -> None:
    for _ in range(600):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def _health(running: RunningServer) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    return int(answer.status)


async def _calls(url: str, pattern: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(_DOCUMENT_READS, pattern))
    finally:
        await conn.close()


async def _create(stub: Stub, user: TestUser, title: str) -> tuple[pb.Document, int]:
    """A new document and the consistency token its write answered with (as an LSN)."""
    call = stub.CreateDocument(
        pb.CreateDocumentRequest(document=pb.Document(title=title)), metadata=user.metadata
    )
    document = await call
    position = token_from(await call.trailing_metadata())
    assert position is not None, "a write answers with a consistency token"
    return document, position


def _token(metadata: object) -> str:
    return next(value for key, value in metadata if key == HEADER)  # type: ignore[attr-defined]


async def _replay(urls: Urls, paused: bool) -> None:
    conn = await asyncpg.connect(urls.replica)
    try:
        await conn.execute(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")
    finally:
        await conn.close()


async def test_reads_land_on_the_replica_and_callers_on_the_primary(urls: Urls) -> None:
    # The principal cache off: every call then loads its caller, and the count shows where.
    settings = {
        "database_read_urls": urls.replica,
        "replica_max_lag_seconds": 60,
        "principal_cache": False,
    }
    async with serving(urls, **settings) as (app, _, stub):
        user = await make_user(app)
        document, position = await _create(stub, user, "on the replica")
        await wait_replayed(urls.replica, position)
        await _until(lambda: app.replicas.replicas[0].problem is None, "replica in use")
        before = {
            server: (await _calls(url, "FROM documents"), await _calls(url, "FROM users"))
            for server, url in (("primary", urls.primary), ("replica", urls.replica))
        }
        reads = 20
        for _ in range(reads):
            got = await stub.GetDocument(
                pb.GetDocumentRequest(id=document.id), metadata=user.metadata
            )
            assert got.title == "on the replica"
        after = {
            server: (await _calls(url, "FROM documents"), await _calls(url, "FROM users"))
            for server, url in (("primary", urls.primary), ("replica", urls.replica))
        }
        problem = app.replicas.replicas[0].problem
    # Every read ran on the replica, every caller's identity was loaded on the primary.
    assert after["replica"][0] - before["replica"][0] == reads, (before, after, problem)
    assert after["primary"][0] == before["primary"][0]
    assert after["primary"][1] - before["primary"][1] >= reads
    assert after["replica"][1] == before["replica"][1]


async def test_the_token_reads_your_writes_while_replay_is_paused(urls: Urls) -> None:
    async with serving(urls, replica_max_lag_seconds=60) as (app, _, stub):
        user = await make_user(app)
        await _until(lambda: app.replicas.replicas[0].problem is None, "replica in use")
        await _replay(urls, paused=True)
        try:
            call = stub.CreateDocument(
                pb.CreateDocumentRequest(document=pb.Document(title="fresh")),
                metadata=user.metadata,
            )
            document = await call
            token = _token(await call.trailing_metadata())
            request = pb.GetDocumentRequest(id=document.id)
            # Without the token the read is the replica's, which has not seen the write ...
            await expect_error(
                stub.GetDocument(request, metadata=user.metadata), grpc.StatusCode.NOT_FOUND
            )
            # ... with it, the primary answers, because the replica has not replayed it.
            with_token = (*user.metadata, (HEADER, token))
            got = await stub.GetDocument(request, metadata=with_token)
            assert got.title == "fresh"
            assert app.replicas.replicas[0].problem is None, "paused, not too far behind"
        finally:
            await _replay(urls, paused=False)
        position = token_from(((HEADER, token),))
        assert position is not None
        await wait_replayed(urls.replica, position)
        reads = await _calls(urls.replica, "FROM documents")
        got = await stub.GetDocument(request, metadata=with_token)
        assert got.title == "fresh"
        assert await _calls(urls.replica, "FROM documents") == reads + 1, "caught up: replica"


async def test_a_replica_too_far_behind_is_skipped(urls: Urls) -> None:
    async with serving(urls, replica_max_lag_seconds=0.5) as (app, running, stub):
        user = await make_user(app)
        replica = app.replicas.replicas[0]
        await _until(lambda: replica.problem is None, "replica in use")
        await _replay(urls, paused=True)
        try:
            document, _ = await _create(stub, user, "behind")
            await _until(lambda: replica.problem is not None, "replica skipped")
            got = await stub.GetDocument(
                pb.GetDocumentRequest(id=document.id), metadata=user.metadata
            )
            assert got.title == "behind", "read from the primary, without a token"
            assert await _health(running) == health_pb2.HealthCheckResponse.SERVING
        finally:
            await _replay(urls, paused=False)
        await _until(lambda: replica.problem is None, "replica back in use")


async def test_a_malformed_token_is_invalid_argument(urls: Urls) -> None:
    async with serving(urls) as (app, _, stub):
        user = await make_user(app)
        request = pb.GetDocumentRequest(id="00000000-0000-0000-0000-000000000000")
        for bad in ("", "0/16B3748", "1.zz", "2.0000000001000000", "1.00000000010000000"):
            await expect_error(
                stub.GetDocument(request, metadata=(*user.metadata, (HEADER, bad))),
                grpc.StatusCode.INVALID_ARGUMENT,
                "MALFORMED_CONSISTENCY_TOKEN",
            )
        twice = (*user.metadata, (HEADER, "1.0000000001000000"), (HEADER, "1.0000000001000000"))
        await expect_error(
            stub.GetDocument(request, metadata=twice),
            grpc.StatusCode.INVALID_ARGUMENT,
            "MALFORMED_CONSISTENCY_TOKEN",
        )


async def _blocked_on_replica(replica_url: str) -> None:
    """Until one of docgate's replica connections waits on a lock."""
    conn = await asyncpg.connect(replica_url)
    try:
        for _ in range(600):
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'docgate-replica' AND wait_event_type = 'Lock'"
            )
            if waiting:
                return
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError("no read is waiting on the replica")


async def test_stopping_the_replica_costs_no_failed_call(pair: Pair, urls: Urls) -> None:
    async with serving(urls, replica_max_lag_seconds=60) as (app, running, stub):
        user = await make_user(app)
        document, position = await _create(stub, user, "always there")
        await wait_replayed(urls.replica, position)
        replica = app.replicas.replicas[0]
        await _until(lambda: replica.problem is None, "replica in use")
        request = pb.GetDocumentRequest(id=document.id)
        # An ACCESS EXCLUSIVE lock taken on the primary is replayed on the standby, so a read
        # there waits: it is surely in flight when the standby goes.
        lock = await asyncpg.connect(urls.primary)
        try:
            held = lock.transaction()
            await held.start()
            await lock.execute("LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
            await wait_replayed(urls.replica, await primary_position(urls.primary))
            in_flight = asyncio.ensure_future(stub.GetDocument(request, metadata=user.metadata))
            await _blocked_on_replica(urls.replica)
            await pair.replica.shut_down()  # fast: the waiting backend is cut
            await held.rollback()  # the read, run again on the primary, may now go on
            got = await in_flight
        finally:
            await lock.close()
        assert got.title == "always there"
        for _ in range(20):  # the replica down: every read goes to the primary
            got = await stub.GetDocument(request, metadata=user.metadata)
            assert got.title == "always there"
        assert replica.problem is not None, "the stopped replica is skipped"
        assert await _health(running) == health_pb2.HealthCheckResponse.SERVING
        pair.replica.start()
        await _until(lambda: replica.problem is None, "the restarted replica back in use")
        got = await stub.GetDocument(request, metadata=user.metadata)
        assert got.title == "always there"


async def _replica_statements(url: str) -> int:
    """Statements the replica ran for docgate's reads (not the checks' or the pings')."""
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                "WHERE query !~* 'pg_is_in_recovery|pg_last_wal_replay_lsn|pg_stat_statements'"
                " AND query ~* 'select'"
            )
        )
    finally:
        await conn.close()


async def test_every_read_rpc_answers_from_the_replica(urls: Urls) -> None:
    """No read RPC writes (a standby would refuse it): each answers, and each runs on it."""
    from docgate.v1 import projects_pb2 as ppb
    from docgate.v1 import projects_pb2_grpc, roles_pb2_grpc, users_pb2_grpc
    from docgate.v1 import roles_pb2 as rpb
    from docgate.v1 import users_pb2 as upb

    async with serving(urls, replica_max_lag_seconds=60) as (app, running, stub):
        admin = await make_user(app, "admin")
        document, position = await _create(stub, admin, "every read")
        await wait_replayed(urls.replica, position)
        await _until(lambda: app.replicas.replicas[0].problem is None, "replica in use")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            projects = projects_pb2_grpc.ProjectServiceStub(channel)
            roles = roles_pb2_grpc.RoleServiceStub(channel)
            users = users_pb2_grpc.UserServiceStub(channel)
            me = str(admin.id)
            reads = [
                lambda: stub.GetDocument(
                    pb.GetDocumentRequest(id=document.id), metadata=admin.metadata
                ),
                lambda: stub.BatchGetDocuments(
                    pb.BatchGetDocumentsRequest(ids=[document.id]), metadata=admin.metadata
                ),
                lambda: stub.ListDocuments(pb.ListDocumentsRequest(), metadata=admin.metadata),
                lambda: stub.SearchDocuments(
                    pb.SearchDocumentsRequest(query="every"), metadata=admin.metadata
                ),
                lambda: projects.ListProjects(ppb.ListProjectsRequest(), metadata=admin.metadata),
                lambda: projects.ListTemplates(ppb.ListTemplatesRequest(), metadata=admin.metadata),
                lambda: roles.GetRole(rpb.GetRoleRequest(name="admin"), metadata=admin.metadata),
                lambda: roles.ListRoles(rpb.ListRolesRequest(), metadata=admin.metadata),
                lambda: roles.ListUserRoles(
                    rpb.ListUserRolesRequest(user_id=me), metadata=admin.metadata
                ),
                lambda: roles.ListRoleMembers(
                    rpb.ListRoleMembersRequest(role="admin"), metadata=admin.metadata
                ),
                lambda: roles.CheckRole(
                    rpb.CheckRoleRequest(user_id=me, role="admin"), metadata=admin.metadata
                ),
                lambda: roles.ListConfigurations(
                    rpb.ListConfigurationsRequest(), metadata=admin.metadata
                ),
                lambda: roles.ListRoleConfigurations(
                    rpb.ListRoleConfigurationsRequest(role="admin"), metadata=admin.metadata
                ),
                lambda: roles.ListMyConfigurations(
                    rpb.ListMyConfigurationsRequest(), metadata=admin.metadata
                ),
                lambda: users.GetCurrentUser(upb.GetCurrentUserRequest(), metadata=admin.metadata),
                lambda: users.GetUser(upb.GetUserRequest(id=me), metadata=admin.metadata),
                lambda: users.ListUsers(upb.ListUsersRequest(), metadata=admin.metadata),
            ]
            for read in reads:
                before = await _replica_statements(urls.replica)
                await read()
                assert await _replica_statements(urls.replica) > before, read
