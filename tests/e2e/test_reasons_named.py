"""The reasons no other suite names, each produced through the real server (or, for a
serialization failure, the real database) and checked by name."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from docgate.v1 import roles_pb2, roles_pb2_grpc, users_pb2, users_pb2_grpc
from google.protobuf import timestamp_pb2
from sqlalchemy import text

from docgate.bootstrap import App
from docgate.errors import Aborted
from docgate.principal import SYSTEM
from tests.support import TestUser, expect_error, unique

BAD = grpc.StatusCode.INVALID_ARGUMENT


async def test_user_and_role_input(channel: grpc.aio.Channel, admin: TestUser) -> None:
    users = users_pb2_grpc.UserServiceStub(channel)
    roles = roles_pb2_grpc.RoleServiceStub(channel)
    md = admin.metadata
    name = unique()
    create = users_pb2.CreateUserRequest
    await expect_error(users.CreateUser(create(username="X!", email="a@b.io"), metadata=md),
                       BAD, "INVALID_USERNAME")  # fmt: skip
    await expect_error(users.CreateUser(create(username=name, email="nope"), metadata=md),
                       BAD, "INVALID_EMAIL")  # fmt: skip
    listing = users_pb2.ListUsersRequest(role="admin", without_roles=True)
    await expect_error(users.ListUsers(listing, metadata=md), BAD, "CONFLICTING_FILTERS")
    await expect_error(roles.GetRole(roles_pb2.GetRoleRequest(name="Bad-Name"), metadata=md),
                       BAD, "INVALID_ROLE_NAME")  # fmt: skip
    await expect_error(
        roles.CreateRole(roles_pb2.CreateRoleRequest(name=unique("r"), description="a\x00b"),
                         metadata=md),
        BAD, "INVALID_TEXT",
    )  # fmt: skip
    grant = roles_pb2.GrantConfigurationRequest
    config = await roles.CreateConfiguration(
        roles_pb2.CreateConfigurationRequest(name=unique("c")), metadata=md
    )
    await expect_error(
        roles.GrantConfiguration(
            grant(role="free_user", configuration_id=config.id, access_level=0), metadata=md
        ),
        BAD, "INVALID_ACCESS_LEVEL",
    )  # fmt: skip
    await expect_error(
        roles.GrantConfiguration(
            grant(role="free_user", configuration_id=config.id, access_level=1,
                  expire_time=timestamp_pb2.Timestamp(seconds=1, nanos=-5)),
            metadata=md,
        ),
        BAD, "INVALID_TIMESTAMP",
    )  # fmt: skip


async def test_a_serialization_failure_is_concurrent_update(app: App) -> None:
    """SQLSTATE 40001 as PostgreSQL raises it: the whole call may be retried."""
    with pytest.raises(Aborted) as caught:
        async with app.uow.transaction(SYSTEM) as session:
            await session.execute(
                text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
            )
    assert caught.value.reason == "CONCURRENT_UPDATE"
