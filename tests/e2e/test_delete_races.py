"""Writes racing a DeleteRole name the resource that went away (issue 11 finding 14).

A connection of the test's own deletes the role and holds its transaction open, so the call
reads the role as still there and then waits on the row in its foreign-key check; the test
commits the delete and the call must answer NOT_FOUND / ROLE_NOT_FOUND — not INTERNAL from an
uncaught IntegrityError, and not USER_NOT_FOUND or CONFIGURATION_NOT_FOUND.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import grpc
import grpc.aio
import pytest
from docgate.v1 import roles_pb2, roles_pb2_grpc, users_pb2, users_pb2_grpc
from sqlalchemy.engine import make_url

from docgate.bootstrap import App
from tests.support import TestUser, blocked_backends, expect_error, make_user, unique

Call = Callable[[grpc.aio.Channel, TestUser, str, str], Awaitable[object]]


async def _create_user(channel: grpc.aio.Channel, admin: TestUser, role: str, _: str) -> object:
    name = unique()
    request = users_pb2.CreateUserRequest(username=name, email=f"{name}@x.io", roles=[role])
    return await users_pb2_grpc.UserServiceStub(channel).CreateUser(
        request, metadata=admin.metadata, timeout=30
    )


async def _assign(channel: grpc.aio.Channel, admin: TestUser, role: str, user_id: str) -> object:
    request = roles_pb2.AssignRoleRequest(user_id=user_id, role=role)
    return await roles_pb2_grpc.RoleServiceStub(channel).AssignRole(
        request, metadata=admin.metadata, timeout=30
    )


async def _grant(channel: grpc.aio.Channel, admin: TestUser, role: str, config: str) -> object:
    request = roles_pb2.GrantConfigurationRequest(
        role=role, configuration_id=config, access_level=1
    )
    return await roles_pb2_grpc.RoleServiceStub(channel).GrantConfiguration(
        request, metadata=admin.metadata, timeout=30
    )


@pytest.mark.parametrize("call", [_create_user, _assign, _grant], ids=["create", "assign", "grant"])
async def test_a_write_racing_delete_role_names_the_role(
    app: App, channel: grpc.aio.Channel, admin: TestUser, call: Call
) -> None:
    roles = roles_pb2_grpc.RoleServiceStub(channel)
    role = unique("r")
    await roles.CreateRole(roles_pb2.CreateRoleRequest(name=role), metadata=admin.metadata)
    target = await make_user(app, "free_user")
    config = await roles.CreateConfiguration(
        roles_pb2.CreateConfigurationRequest(name=unique("c")), metadata=admin.metadata
    )
    other = str(target.id) if call is _assign else config.id
    assert app.settings.database_url is not None
    dsn = make_url(app.settings.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("DELETE FROM roles WHERE name = $1", role)
        pending = asyncio.ensure_future(call(channel, admin, role, other))
        await blocked_backends(app.settings.database_url)  # waits on the deleted role's row
        await tx.commit()
    finally:
        await conn.close()
    await expect_error(pending, grpc.StatusCode.NOT_FOUND, "ROLE_NOT_FOUND")
