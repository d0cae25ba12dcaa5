"""RoleService through the real server: role lifecycle and membership."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import grpc.aio
import pytest
from docgate.v1 import roles_pb2, roles_pb2_grpc, users_pb2, users_pb2_grpc
from google.protobuf import field_mask_pb2
from sqlalchemy import text

from docgate.bootstrap import App
from tests import support
from tests.support import count_rows, expect_error, make_user, unique

DEADLINE = 10.0


@pytest.fixture
def roles(channel: grpc.aio.Channel) -> roles_pb2_grpc.RoleServiceStub:
    return roles_pb2_grpc.RoleServiceStub(channel)


async def test_role_lifecycle(
    roles: roles_pb2_grpc.RoleServiceStub, admin: support.TestUser
) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    name = unique("r")
    created = await roles.CreateRole(roles_pb2.CreateRoleRequest(name=name, description="d"), **md)
    assert (created.name, created.description, created.builtin) == (name, "d", False)
    assert created.create_time.seconds > 0
    assert await roles.GetRole(roles_pb2.GetRoleRequest(name=name), **md) == created
    await expect_error(
        roles.CreateRole(roles_pb2.CreateRoleRequest(name=name), **md),
        grpc.StatusCode.ALREADY_EXISTS,
        "ROLE_EXISTS",
    )
    mask = field_mask_pb2.FieldMask(paths=["description"])
    updated = await roles.UpdateRole(
        roles_pb2.UpdateRoleRequest(
            role=roles_pb2.Role(name=name, description="new", builtin=True), update_mask=mask
        ),
        **md,
    )
    assert (updated.description, updated.builtin) == ("new", False)
    await roles.DeleteRole(roles_pb2.DeleteRoleRequest(name=name), **md)
    await expect_error(
        roles.GetRole(roles_pb2.GetRoleRequest(name=name), **md),
        grpc.StatusCode.NOT_FOUND,
        "ROLE_NOT_FOUND",
    )
    await expect_error(
        roles.DeleteRole(roles_pb2.DeleteRoleRequest(name=name), **md), grpc.StatusCode.NOT_FOUND
    )


@pytest.mark.parametrize(
    "request_",
    [
        roles_pb2.CreateRoleRequest(name="Admin2"),
        roles_pb2.CreateRoleRequest(name="x"),
        roles_pb2.CreateRoleRequest(name="r" * 51),
        roles_pb2.CreateRoleRequest(name="ok_name", description="a\x00b"),
        roles_pb2.CreateRoleRequest(name="ok_name", description="d" * 1001),
    ],
)
async def test_create_role_invalid(
    roles: roles_pb2_grpc.RoleServiceStub,
    admin: support.TestUser,
    request_: roles_pb2.CreateRoleRequest,
) -> None:
    await expect_error(
        roles.CreateRole(request_, metadata=admin.metadata, timeout=DEADLINE),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


@pytest.mark.parametrize("paths", [[], ["name"], ["description", "builtin"]])
async def test_update_role_mask_must_name_description(
    roles: roles_pb2_grpc.RoleServiceStub, admin: support.TestUser, paths: list[str]
) -> None:
    request = roles_pb2.UpdateRoleRequest(
        role=roles_pb2.Role(name="free_user", description="x"),
        update_mask=field_mask_pb2.FieldMask(paths=paths),
    )
    await expect_error(
        roles.UpdateRole(request, metadata=admin.metadata, timeout=DEADLINE),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_UPDATE_MASK",
    )


@pytest.mark.parametrize("builtin", ["admin", "paid_user", "free_user"])
async def test_builtin_roles_cannot_be_deleted(
    roles: roles_pb2_grpc.RoleServiceStub, admin: support.TestUser, builtin: str
) -> None:
    await expect_error(
        roles.DeleteRole(
            roles_pb2.DeleteRoleRequest(name=builtin), metadata=admin.metadata, timeout=DEADLINE
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "BUILTIN_ROLE",
    )


async def test_list_roles_pages_cover_every_role_once(
    app: App, roles: roles_pb2_grpc.RoleServiceStub, admin: support.TestUser
) -> None:
    carol = await make_user(app, "free_user")  # ListRoles is for any authenticated caller
    for _ in range(3):
        await roles.CreateRole(
            roles_pb2.CreateRoleRequest(name=unique("r")), metadata=admin.metadata, timeout=DEADLINE
        )
    seen: list[str] = []
    token = ""
    while True:
        page = await roles.ListRoles(
            roles_pb2.ListRolesRequest(page_size=2, page_token=token),
            metadata=carol.metadata,
            timeout=DEADLINE,
        )
        assert len(page.roles) <= 2
        seen += [role.name for role in page.roles]
        token = page.next_page_token
        if not token:
            break
    total = await count_rows(app, "select count(*) from roles")
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == total
    assert {"admin", "paid_user", "free_user"} <= set(seen)


@pytest.mark.parametrize(
    "request_",
    [
        roles_pb2.ListRolesRequest(page_size=-1),
        roles_pb2.ListRolesRequest(page_token="garbage"),
    ],
)
async def test_list_roles_invalid_paging(
    roles: roles_pb2_grpc.RoleServiceStub,
    admin: support.TestUser,
    request_: roles_pb2.ListRolesRequest,
) -> None:
    await expect_error(
        roles.ListRoles(request_, metadata=admin.metadata, timeout=DEADLINE),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_assign_revoke_check_list(
    app: App, roles: roles_pb2_grpc.RoleServiceStub, admin: support.TestUser
) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    dave = await make_user(app, "free_user")
    name = unique("r")
    await roles.CreateRole(roles_pb2.CreateRoleRequest(name=name), **md)
    first = await roles.AssignRole(
        roles_pb2.AssignRoleRequest(user_id=str(dave.id), role=name), **md
    )
    again = await roles.AssignRole(
        roles_pb2.AssignRoleRequest(user_id=str(dave.id), role=name), **md
    )
    assert first == again  # idempotent: the same membership, the first assign_time
    assert (first.user_id, first.role) == (str(dave.id), name)
    check = roles_pb2.CheckRoleRequest(user_id=str(dave.id), role=name)
    assert (await roles.CheckRole(check, **md)).has_role
    # The user may ask about themselves.
    assert (await roles.CheckRole(check, metadata=dave.metadata, timeout=DEADLINE)).has_role
    mine = await roles.ListUserRoles(
        roles_pb2.ListUserRolesRequest(user_id=str(dave.id)), metadata=dave.metadata
    )
    assert [m.role for m in mine.memberships] == sorted(["free_user", name])
    members = await roles.ListRoleMembers(roles_pb2.ListRoleMembersRequest(role=name), **md)
    assert [m.user_id for m in members.memberships] == [str(dave.id)]
    for _ in range(2):
        await roles.RevokeRole(roles_pb2.RevokeRoleRequest(user_id=str(dave.id), role=name), **md)
    assert not (await roles.CheckRole(check, **md)).has_role


async def test_membership_not_found_and_invalid(
    roles: roles_pb2_grpc.RoleServiceStub, admin: support.TestUser
) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    nobody = str(uuid.uuid4())
    for call in (
        roles.AssignRole(roles_pb2.AssignRoleRequest(user_id=nobody, role="free_user"), **md),
        roles.RevokeRole(roles_pb2.RevokeRoleRequest(user_id=nobody, role="free_user"), **md),
        roles.CheckRole(roles_pb2.CheckRoleRequest(user_id=nobody, role="free_user"), **md),
        roles.ListUserRoles(roles_pb2.ListUserRolesRequest(user_id=nobody), **md),
    ):
        await expect_error(call, grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    me = str(admin.id)
    for call in (
        roles.AssignRole(roles_pb2.AssignRoleRequest(user_id=me, role="no_such_role"), **md),
        roles.CheckRole(roles_pb2.CheckRoleRequest(user_id=me, role="no_such_role"), **md),
        roles.ListRoleMembers(roles_pb2.ListRoleMembersRequest(role="no_such_role"), **md),
    ):
        await expect_error(call, grpc.StatusCode.NOT_FOUND, "ROLE_NOT_FOUND")
    await expect_error(
        roles.AssignRole(roles_pb2.AssignRoleRequest(user_id="not-a-uuid", role="admin"), **md),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ID",
    )


async def test_self_or_admin_rpcs_refuse_other_users(
    app: App, roles: roles_pb2_grpc.RoleServiceStub
) -> None:
    carol, dave = await make_user(app, "free_user"), await make_user(app, "paid_user")
    md = {"metadata": carol.metadata, "timeout": DEADLINE}
    for user_id in (str(dave.id), str(uuid.uuid4()), "not-a-uuid"):
        await expect_error(
            roles.CheckRole(roles_pb2.CheckRoleRequest(user_id=user_id, role="admin"), **md),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        await expect_error(
            roles.ListUserRoles(roles_pb2.ListUserRolesRequest(user_id=user_id), **md),
            grpc.StatusCode.PERMISSION_DENIED,
        )


async def test_concurrent_duplicate_assigns_leave_one_row(
    app: App, roles: roles_pb2_grpc.RoleServiceStub, admin: support.TestUser
) -> None:
    dave = await make_user(app)
    request = roles_pb2.AssignRoleRequest(user_id=str(dave.id), role="paid_user")
    replies = await asyncio.gather(
        *(roles.AssignRole(request, metadata=admin.metadata, timeout=DEADLINE) for _ in range(20))
    )
    assert len({r.SerializeToString() for r in replies}) == 1
    rows = await count_rows(app, "select count(*) from user_roles where user_id = :u", u=dave.id)
    assert rows == 1


async def test_revocation_takes_effect_on_the_next_call(
    app: App,
    channel: grpc.aio.Channel,
    roles: roles_pb2_grpc.RoleServiceStub,
    admin: support.TestUser,
) -> None:
    users = users_pb2_grpc.UserServiceStub(channel)
    eve = await make_user(app, "admin")
    list_users = users_pb2.ListUsersRequest(page_size=1)
    await users.ListUsers(list_users, metadata=eve.metadata, timeout=DEADLINE)
    await roles.RevokeRole(
        roles_pb2.RevokeRoleRequest(user_id=str(eve.id), role="admin"),
        metadata=admin.metadata,
        timeout=DEADLINE,
    )
    await expect_error(
        users.ListUsers(list_users, metadata=eve.metadata, timeout=DEADLINE),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    # ... and an assignment, too.
    await roles.AssignRole(
        roles_pb2.AssignRoleRequest(user_id=str(eve.id), role="admin"),
        metadata=admin.metadata,
        timeout=DEADLINE,
    )
    await users.ListUsers(list_users, metadata=eve.metadata, timeout=DEADLINE)


async def test_delete_role_leaves_no_orphans(
    app: App, roles: roles_pb2_grpc.RoleServiceStub, admin: support.TestUser
) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    name = unique("r")
    await roles.CreateRole(roles_pb2.CreateRoleRequest(name=name), **md)
    dave = await make_user(app, "free_user")
    await roles.AssignRole(roles_pb2.AssignRoleRequest(user_id=str(dave.id), role=name), **md)
    config = await roles.CreateConfiguration(
        roles_pb2.CreateConfigurationRequest(name=unique("c")), **md
    )
    await roles.GrantConfiguration(
        roles_pb2.GrantConfigurationRequest(role=name, configuration_id=config.id, access_level=2),
        **md,
    )
    role_id = await _role_id(app, name)
    await roles.DeleteRole(roles_pb2.DeleteRoleRequest(name=name), **md)
    for table in ("user_roles", "role_configurations"):
        assert (
            await count_rows(app, f"select count(*) from {table} where role_id = :r", r=role_id)
            == 0
        )
    # Everything else survives.
    assert await count_rows(app, "select count(*) from users where id = :u", u=dave.id) == 1
    assert (
        await count_rows(app, "select count(*) from configurations where id = :c", c=config.id) == 1
    )
    reply = await roles.ListUserRoles(roles_pb2.ListUserRolesRequest(user_id=str(dave.id)), **md)
    assert [m.role for m in reply.memberships] == ["free_user"]


async def _role_id(app: App, name: str) -> uuid.UUID:
    async with app.engine.connect() as conn:
        value = (
            await conn.execute(text("select id from roles where name = :n"), {"n": name})
        ).one()
    return uuid.UUID(str(value.id))


async def test_list_role_members_pages(
    app: App, roles: roles_pb2_grpc.RoleServiceStub, admin: support.TestUser
) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    name = unique("r")
    await roles.CreateRole(roles_pb2.CreateRoleRequest(name=name), **md)
    members = {str((await make_user(app, name)).id) for _ in range(5)}
    seen: list[str] = []
    token = ""
    while True:
        page = await roles.ListRoleMembers(
            roles_pb2.ListRoleMembersRequest(role=name, page_size=2, page_token=token), **md
        )
        assert len(page.memberships) <= 2 and all(m.role == name for m in page.memberships)
        seen += [m.user_id for m in page.memberships]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == seen and set(seen) == members and len(seen) == 5
    # The token is bound to its role.
    first = await roles.ListRoleMembers(
        roles_pb2.ListRoleMembersRequest(role=name, page_size=1), **md
    )
    await expect_error(
        roles.ListRoleMembers(
            roles_pb2.ListRoleMembersRequest(role="admin", page_token=first.next_page_token), **md
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )
