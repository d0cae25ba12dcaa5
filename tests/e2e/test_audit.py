"""The audit trail through the real server: one entry per committed change, none for a change
that failed, the bypass reads, the chain under concurrency, and ListAuditEntries."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import grpc.aio
import pytest
from docgate.v1 import audit_pb2, audit_pb2_grpc, documents_pb2, roles_pb2, users_pb2
from sqlalchemy import text
from sqlalchemy.engine import make_url

from docgate import audit
from docgate.bootstrap import App
from docgate.db.audit import seal_all
from docgate.repositories.audit import walk
from tests.e2e.audit_support import SCENARIOS, World, new_request_id
from tests.support import TestUser, blocked_backends, expect_error, make_user, pool_drained, unique


@pytest.fixture
def world(app: App, channel: grpc.aio.Channel, admin: TestUser) -> World:
    return World(app, channel, admin)


def test_every_mutating_rpc_has_a_scenario() -> None:
    assert set(SCENARIOS) == audit.RPC_WRITES


@pytest.mark.parametrize("method", sorted(audit.RPC_WRITES))
async def test_each_mutating_rpc_leaves_exactly_one_entry(world: World, method: str) -> None:
    rid = new_request_id()
    resource, action = await SCENARIOS[method](world, rid)
    entries = await world.entries(rid)
    assert len(entries) == 1, entries
    (entry,) = entries
    assert entry["action"] == (action or audit.WRITES[method][0].value)
    assert entry["actor_id"] == world.admin.id
    assert entry["resource"] == resource
    assert entry["method"] == method


async def test_content_and_emails_are_named_never_shown(world: World) -> None:
    rid = new_request_id()
    await SCENARIOS["/docgate.v1.DocumentService/UpdateDocument"](world, rid)
    (entry,) = await world.entries(rid)
    assert entry["changes"] == {"title": {"old": "audited", "new": "renamed"}, "content": {}}
    rid = new_request_id()
    await SCENARIOS["/docgate.v1.UserService/CreateUser"](world, rid)
    (entry,) = await world.entries(rid)
    assert entry["changes"]["email"] == {}  # type: ignore[index]
    assert "example.com" not in str(entry)


async def test_ordinary_reads_leave_none_and_bypass_reads_one_each(world: World) -> None:
    doc = await world.document()
    rid = new_request_id()
    await world.docs.GetDocument(
        documents_pb2.GetDocumentRequest(id=doc.id), metadata=world.meta(rid)
    )
    listing = documents_pb2.ListDocumentsRequest(page_size=1)
    await world.docs.ListDocuments(listing, metadata=world.meta(rid))
    assert await world.entries(rid) == []
    await world.docs.DeleteDocument(
        documents_pb2.DeleteDocumentRequest(id=doc.id), metadata=world.meta()
    )
    for _ in range(2):
        rid = new_request_id()
        get = documents_pb2.GetDocumentRequest(id=doc.id, show_deleted=True)
        await world.docs.GetDocument(get, metadata=world.meta(rid))
        (entry,) = await world.entries(rid)
        assert (entry["action"], entry["resource"]) == ("ADMIN_BYPASS_READ", f"documents/{doc.id}")
    rid = new_request_id()
    listing = documents_pb2.ListDocumentsRequest(page_size=1, show_deleted=True)
    await world.docs.ListDocuments(listing, metadata=world.meta(rid))
    assert [e["action"] for e in await world.entries(rid)] == ["ADMIN_BYPASS_READ"]


async def test_a_refused_bypass_leaves_none(world: World) -> None:
    user = await make_user(world.app)
    rid = new_request_id()
    listing = documents_pb2.ListDocumentsRequest(show_deleted=True)
    await expect_error(
        world.docs.ListDocuments(listing, metadata=(*user.metadata, ("x-request-id", rid))),
        grpc.StatusCode.PERMISSION_DENIED,
        "ADMIN_ONLY",
    )
    assert await world.entries(rid) == []


async def test_a_constraint_violation_leaves_none(world: World) -> None:
    taken = await make_user(world.app)
    rid = new_request_id()
    request = users_pb2.CreateUserRequest(username=taken.username, email=f"{unique()}@example.com")
    await expect_error(
        world.users.CreateUser(request, metadata=world.meta(rid)),
        grpc.StatusCode.ALREADY_EXISTS,
        "USER_EXISTS",
    )
    assert await world.entries(rid) == []


def _raw(url: str) -> str:
    return make_url(url).render_as_string(hide_password=False)


async def _holding_the_trail(database_url: str) -> asyncpg.Connection:
    """A connection holding the audit table in SHARE mode: every write stops at its entry's
    INSERT (its last statement), with its change made and not committed."""
    conn = await asyncpg.connect(_raw(database_url))
    await conn.execute("BEGIN")
    await conn.execute("LOCK TABLE audit_entries IN SHARE MODE")
    return conn


async def _role_exists(app: App, name: str) -> bool:
    async with app.engine.connect() as conn:
        found = await conn.scalar(text("SELECT count(*) FROM roles WHERE name = :n"), {"n": name})
        return bool(found)


async def test_a_client_cancel_mid_write_leaves_neither_change_nor_entry(
    world: World, database_url: str
) -> None:
    holder = await _holding_the_trail(database_url)
    name, rid = unique("r"), new_request_id()
    try:
        call = world.roles.CreateRole(
            roles_pb2.CreateRoleRequest(name=name), metadata=world.meta(rid)
        )
        await blocked_backends(database_url)  # inside its transaction, waiting at its entry
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The server has rolled back (its connection is back) while the table is still held:
        # releasing it earlier could let the write commit before the cancel reaches the server.
        assert await pool_drained(world.app)
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()
    assert not await _role_exists(world.app, name)
    assert await world.entries(rid) == []


async def test_a_killed_connection_mid_write_leaves_neither_change_nor_entry(
    world: World, database_url: str
) -> None:
    holder = await _holding_the_trail(database_url)
    name, rid = unique("r"), new_request_id()
    try:
        call = world.roles.CreateRole(
            roles_pb2.CreateRoleRequest(name=name), metadata=world.meta(rid)
        )
        (pid,) = await blocked_backends(database_url)
        await holder.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call
        assert failed.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()
    assert not await _role_exists(world.app, name)
    assert await world.entries(rid) == []


async def test_fifty_concurrent_assignments_leave_fifty_entries_and_the_chain_holds(
    world: World,
) -> None:
    role = await world.role()
    users = [await make_user(world.app) for _ in range(50)]
    rids = [new_request_id() for _ in users]
    await asyncio.gather(
        *(
            world.roles.AssignRole(
                roles_pb2.AssignRoleRequest(user_id=str(u.id), role=role), metadata=world.meta(rid)
            )
            for u, rid in zip(users, rids, strict=True)
        )
    )
    for user, rid in zip(users, rids, strict=True):
        (entry,) = await world.entries(rid)
        assert entry["resource"] == f"users/{user.id}/roles/{role}"
    async with world.app.engine.connect() as conn:
        await seal_all(conn)  # what the background sealer has not reached yet
        entries = [e async for e in walk(conn)]
    verdict = audit.verify(entries)
    assert verdict.first_bad is None, verdict.why
    assert verdict.count >= 50
    assert [e.id for e in entries] == list(range(1, len(entries) + 1))  # dense
    sealed = {e.request_id for e in entries}
    assert sealed.issuperset(rids)


def _stub(world: World) -> audit_pb2_grpc.AuditServiceStub:
    return audit_pb2_grpc.AuditServiceStub(world.channel)


async def test_list_filters_pages_newest_first(world: World) -> None:
    role = await world.role()
    users = [await make_user(world.app) for _ in range(3)]
    for user in users:
        request = roles_pb2.AssignRoleRequest(user_id=str(user.id), role=role)
        await world.roles.AssignRole(request, metadata=world.meta())
    seen: list[audit_pb2.AuditEntry] = []
    token = ""
    while True:
        request = audit_pb2.ListAuditEntriesRequest(
            page_size=1,
            page_token=token,
            actor_id=str(world.admin.id),
            action=audit_pb2.AUDIT_ACTION_ROLE_ASSIGNED,
        )
        page = await _stub(world).ListAuditEntries(request, metadata=world.meta())
        seen.extend(page.entries)
        token = page.next_page_token
        if not token:
            break
    assert [e.resource for e in seen] == [f"users/{u.id}/roles/{role}" for u in reversed(users)]
    assert [e.id for e in seen] == sorted((e.id for e in seen), reverse=True)
    under = audit_pb2.ListAuditEntriesRequest(resource=f"users/{users[0].id}")
    page = await _stub(world).ListAuditEntries(under, metadata=world.meta())
    assert {e.action for e in page.entries} == {audit_pb2.AUDIT_ACTION_ROLE_ASSIGNED}
    newest = seen[0]
    window = audit_pb2.ListAuditEntriesRequest(
        resource=newest.resource, start_time=newest.time, end_time=newest.time
    )  # an empty window: start_time <= time < end_time
    assert not (await _stub(world).ListAuditEntries(window, metadata=world.meta())).entries


async def test_list_refuses_an_unknown_action(world: World) -> None:
    request = audit_pb2.ListAuditEntriesRequest(action=999)
    await expect_error(
        _stub(world).ListAuditEntries(request, metadata=world.meta()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_AUDIT_ACTION",
    )


async def test_the_table_refuses_update_and_delete(world: World, database_url: str) -> None:
    await world.role()  # at least one entry to refuse to change
    conn = await asyncpg.connect(_raw(database_url))
    try:
        for sql in ("UPDATE audit_entries SET resource = 'x'", "DELETE FROM audit_entries"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(sql)
    finally:
        await conn.close()
