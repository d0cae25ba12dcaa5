"""A revocation that committed first always wins (issue 11 finding 10).

The caller's roles are read at the door, outside the RPC's transaction, so a revocation can
commit after the door let a call in and before the call's writes. Each test holds, from a
connection of its own, the caller's user row, so the call is through the door and waiting at
the start of its transaction; it then revokes the caller's admin role, commits, and lets the
call go. The call must be ABORTED (CALLER_CHANGED) and write nothing. Before the fix a call
never looked at its roles again: it wrote with the roles it had at the door (here the tests
fail because the call does not even wait — nothing re-reads the caller). A revocation that
comes *after* the transaction's start waits for its commit (the roles are held FOR SHARE).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import grpc
from docgate.v1 import documents_pb2 as pb
from docgate.v1 import documents_pb2_grpc, roles_pb2, roles_pb2_grpc
from google.protobuf import field_mask_pb2
from sqlalchemy.engine import make_url

from docgate.bootstrap import App
from tests.support import TestUser, blocked_backends, count_rows, expect_error, make_user

REVOKE_ADMIN = (
    "DELETE FROM user_roles WHERE user_id = $1 "
    "AND role_id = (SELECT id FROM roles WHERE name = 'admin')"
)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def _caller_row_locked(url: str, caller: TestUser) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(_dsn(url))
    tx = conn.transaction()
    await tx.start()
    await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", caller.id)
    try:
        yield conn
    finally:
        await tx.commit()
        await conn.close()


async def _race(app: App, ex_admin: TestUser, start: Callable[[], Awaitable[object]]) -> None:
    database_url = app.settings.database_url
    assert database_url is not None
    async with _caller_row_locked(database_url, ex_admin) as conn:
        call = asyncio.ensure_future(start())
        await blocked_backends(database_url)
        await conn.execute(REVOKE_ADMIN, ex_admin.id)  # committed as the lock is let go
    await expect_error(call, grpc.StatusCode.ABORTED, "CALLER_CHANGED")


async def test_an_ex_admin_cannot_demote_an_admin(app: App, channel: grpc.aio.Channel) -> None:
    caller, target = await make_user(app, "admin"), await make_user(app, "admin")
    roles = roles_pb2_grpc.RoleServiceStub(channel)
    request = roles_pb2.RevokeRoleRequest(user_id=str(target.id), role="admin")
    await _race(
        app, caller, lambda: roles.RevokeRole(request, metadata=caller.metadata, timeout=30)
    )
    held = await count_rows(
        app,
        "SELECT count(*) FROM user_roles ur JOIN roles r ON r.id = ur.role_id "
        "WHERE ur.user_id = :user AND r.name = 'admin'",
        user=target.id,
    )
    assert held == 1


def _retitle(doc_id: str, title: str) -> pb.UpdateDocumentRequest:
    return pb.UpdateDocumentRequest(
        document=pb.Document(id=doc_id, title=title),
        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
    )


async def test_an_ex_admin_cannot_write_a_private_document(
    app: App, channel: grpc.aio.Channel
) -> None:
    owner, caller = await make_user(app, "free_user"), await make_user(app, "admin")
    docs = documents_pb2_grpc.DocumentServiceStub(channel)
    private = await docs.CreateDocument(
        pb.CreateDocumentRequest(document=pb.Document(title="mine")), metadata=owner.metadata
    )
    request = _retitle(private.id, "taken over")
    await _race(
        app, caller, lambda: docs.UpdateDocument(request, metadata=caller.metadata, timeout=30)
    )
    title = await count_rows(
        app,
        "SELECT count(*) FROM documents WHERE id = :id AND title = 'mine'",
        id=uuid.UUID(private.id),
    )
    assert title == 1


async def test_a_revocation_after_the_writes_start_waits_for_its_commit(
    app: App, channel: grpc.aio.Channel
) -> None:
    """The write has re-read its caller (FOR SHARE) and waits on a document row the test
    holds: a revocation now must wait for the write's commit. (Before the re-read ran inside
    the transaction — it ran on the driver before SQLAlchemy's lazy BEGIN, so in autocommit —
    its locks ended with the statement and the revocation went through at once.)"""
    database_url = app.settings.database_url
    assert database_url is not None
    caller = await make_user(app, "admin")
    docs = documents_pb2_grpc.DocumentServiceStub(channel)
    doc = await docs.CreateDocument(
        pb.CreateDocumentRequest(document=pb.Document(title="before")), metadata=caller.metadata
    )
    request = _retitle(doc.id, "after")
    holder = await asyncpg.connect(_dsn(database_url))
    revoker = await asyncpg.connect(_dsn(database_url))
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM documents WHERE id = $1 FOR UPDATE", uuid.UUID(doc.id))
        call = asyncio.ensure_future(
            docs.UpdateDocument(request, metadata=caller.metadata, timeout=30)
        )
        await blocked_backends(database_url)  # through the re-read, waiting on the document
        await revoker.execute("SET lock_timeout = '300ms'")
        try:
            await revoker.execute(REVOKE_ADMIN, caller.id)
            revoked = True
        except asyncpg.LockNotAvailableError:
            revoked = False
        await tx.commit()
        updated = await call
    finally:
        await holder.close()
        await revoker.close()
    assert not revoked  # the write held the caller's roles FOR SHARE until its commit
    assert updated.title == "after"
