"""The last-admin guard. Each test has a database of its own: the shared one has many admins."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
import grpc.aio
import pytest
from docgate.v1 import roles_pb2, roles_pb2_grpc, users_pb2, users_pb2_grpc
from google.protobuf import field_mask_pb2
from sqlalchemy import text

from docgate.bootstrap import App, build_app
from docgate.db import migrations
from docgate.errors import FailedPrecondition
from docgate.repositories.memberships import MembershipRepository
from docgate.server import start_server
from tests import support
from tests.conftest import settings_for
from tests.support import error_info, make_user

DEADLINE = 10.0


@dataclass
class Isolated:
    app: App
    roles: roles_pb2_grpc.RoleServiceStub
    users: users_pb2_grpc.UserServiceStub

    async def active_admins(self) -> set[uuid.UUID]:
        sql = (
            "select u.id from users u join user_roles ur on ur.user_id = u.id "
            "join roles r on r.id = ur.role_id where r.name = 'admin' and u.is_active"
        )
        async with self.app.engine.connect() as conn:
            return {row.id for row in await conn.execute(text(sql))}


@pytest.fixture
async def isolated(scratch_database_url: str) -> AsyncIterator[Isolated]:
    await migrations.upgrade(scratch_database_url)
    app = build_app(settings_for(scratch_database_url), scratch_database_url)
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield Isolated(
                app,
                roles_pb2_grpc.RoleServiceStub(channel),
                users_pb2_grpc.UserServiceStub(channel),
            )
    finally:
        await running.stop(None)
        await app.close()


Removal = Callable[[Isolated, support.TestUser, uuid.UUID], Awaitable[object]]


def _revoke(env: Isolated, caller: support.TestUser, target: uuid.UUID) -> Awaitable[object]:
    request = roles_pb2.RevokeRoleRequest(user_id=str(target), role="admin")
    return env.roles.RevokeRole(request, metadata=caller.metadata, timeout=DEADLINE)


def _deactivate(env: Isolated, caller: support.TestUser, target: uuid.UUID) -> Awaitable[object]:
    request = users_pb2.UpdateUserRequest(
        user=users_pb2.User(id=str(target), is_active=False),
        update_mask=field_mask_pb2.FieldMask(paths=["is_active"]),
    )
    return env.users.UpdateUser(request, metadata=caller.metadata, timeout=DEADLINE)


def _delete(env: Isolated, caller: support.TestUser, target: uuid.UUID) -> Awaitable[object]:
    request = users_pb2.DeleteUserRequest(id=str(target), force=True)
    return env.users.DeleteUser(request, metadata=caller.metadata, timeout=DEADLINE)


REMOVALS = {"revoke": _revoke, "deactivate": _deactivate, "delete": _delete}


@pytest.mark.parametrize("removal", REMOVALS.values(), ids=REMOVALS.keys())
async def test_the_last_active_admin_cannot_be_removed(
    isolated: Isolated, removal: Removal
) -> None:
    only = await make_user(isolated.app, "admin")
    await make_user(isolated.app, "admin", active=False)  # inactive admins do not count
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await removal(isolated, only, only.id)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(caught.value)
    assert info is not None and info.reason == "LAST_ADMIN"
    assert await isolated.active_admins() == {only.id}
    # With a second active admin it is allowed (here: removing yourself).
    second = await make_user(isolated.app, "admin")
    await removal(isolated, only, only.id)
    assert await isolated.active_admins() == {second.id}


@pytest.mark.parametrize("removal", REMOVALS.values(), ids=REMOVALS.keys())
async def test_racing_removals_leave_one_admin(isolated: Isolated, removal: Removal) -> None:
    """Two admins; one of them removes both at once. Exactly one call succeeds, every round."""
    survivor = await make_user(isolated.app, "admin")
    for _ in range(5):
        newcomer = await make_user(isolated.app, "admin")
        caller = survivor
        results = await asyncio.gather(
            removal(isolated, caller, survivor.id),
            removal(isolated, caller, newcomer.id),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert len(failures) == 1, results
        (failure,) = failures
        assert isinstance(failure, grpc.aio.AioRpcError)
        # The loser reached the guard (FAILED_PRECONDITION), or its caller had already lost
        # admin (revoke) or the account (deactivate, delete) when it was authenticated, or
        # lost it between the door and its transaction (ABORTED, CALLER_CHANGED), or the two
        # waited on each other's locks (ABORTED, CONCURRENT_UPDATE: PostgreSQL's deadlock
        # detector).
        assert failure.code() in {
            grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.ABORTED,
        }
        (left,) = await isolated.active_admins()
        survivor = survivor if left == survivor.id else newcomer


async def test_the_guard_waits_for_a_concurrent_removal(isolated: Isolated) -> None:
    """Deterministic interleaving at the repository: the second revoke blocks on the lock
    while the first is uncommitted, then sees the result and refuses."""
    first, second = await make_user(isolated.app, "admin"), await make_user(isolated.app, "admin")

    async def revoke(user: support.TestUser, hold: bool) -> None:
        async with isolated.app.uow.transaction() as session:
            await MembershipRepository(session).revoke(user.id, "admin")
            if hold:
                await asyncio.sleep(0.3)

    holder = asyncio.create_task(revoke(first, hold=True))
    await asyncio.sleep(0.1)  # the holder has the lock and has revoked, uncommitted
    waiter = asyncio.create_task(revoke(second, hold=False))
    await asyncio.sleep(0.1)
    assert not waiter.done()  # blocked on the advisory lock
    await holder
    with pytest.raises(FailedPrecondition) as caught:
        await waiter
    assert caught.value.reason == "LAST_ADMIN"
    assert await isolated.active_admins() == {second.id}
