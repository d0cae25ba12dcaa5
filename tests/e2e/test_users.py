"""UserService through the real server (GetCurrentUser is covered in test_server.py)."""

from __future__ import annotations

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
Stub = users_pb2_grpc.UserServiceStub


@pytest.fixture
def users(channel: grpc.aio.Channel) -> Stub:
    return users_pb2_grpc.UserServiceStub(channel)


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def test_create_get_user(users: Stub, admin: support.TestUser) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    name = unique("n")
    created = await users.CreateUser(
        users_pb2.CreateUserRequest(
            username=name, email=f"{name}@Example.COM", roles=["paid_user", "free_user"]
        ),
        **md,
    )
    assert (created.username, created.email, created.is_active) == (
        name,
        f"{name}@example.com",
        True,
    )
    assert list(created.roles) == ["free_user", "paid_user"]
    assert await users.GetUser(users_pb2.GetUserRequest(id=created.id), **md) == created
    for duplicate in (
        users_pb2.CreateUserRequest(username=name, email=f"other-{name}@example.com"),
        users_pb2.CreateUserRequest(username=unique("n"), email=f"{name}@example.com"),
    ):
        await expect_error(
            users.CreateUser(duplicate, **md), grpc.StatusCode.ALREADY_EXISTS, "USER_EXISTS"
        )
    await expect_error(
        users.CreateUser(
            users_pb2.CreateUserRequest(username=unique("n"), email="a@b.io", roles=["nope_x"]),
            **md,
        ),
        grpc.StatusCode.NOT_FOUND,
        "ROLE_NOT_FOUND",
    )


@pytest.mark.parametrize(
    "request_",
    [
        users_pb2.CreateUserRequest(username="", email="a@b.io"),
        users_pb2.CreateUserRequest(username="Bad Name", email="a@b.io"),
        users_pb2.CreateUserRequest(username="okname", email="not-an-email"),
        users_pb2.CreateUserRequest(username="okname", email="a\x00@b.io"),
        users_pb2.CreateUserRequest(username="okname", email="a@b.io", roles=["Bad"]),
    ],
)
async def test_create_user_invalid(
    users: Stub, admin: support.TestUser, request_: users_pb2.CreateUserRequest
) -> None:
    await expect_error(
        users.CreateUser(request_, metadata=admin.metadata, timeout=DEADLINE),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_get_user_self_or_admin(app: App, users: Stub, admin: support.TestUser) -> None:
    carol, dave = await make_user(app, "free_user"), await make_user(app, "paid_user")
    me = await users.GetUser(
        users_pb2.GetUserRequest(id=str(carol.id)), metadata=carol.metadata, timeout=DEADLINE
    )
    assert me.username == carol.username
    for other in (str(dave.id), str(uuid.uuid4()), "", "junk"):
        await expect_error(
            users.GetUser(users_pb2.GetUserRequest(id=other), metadata=carol.metadata),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    await expect_error(
        users.GetUser(users_pb2.GetUserRequest(id=str(uuid.uuid4())), metadata=admin.metadata),
        grpc.StatusCode.NOT_FOUND,
        "USER_NOT_FOUND",
    )
    await expect_error(
        users.GetUser(users_pb2.GetUserRequest(id="junk"), metadata=admin.metadata),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ID",
    )


async def _all_pages(
    users: Stub, admin: support.TestUser, **filters: object
) -> list[users_pb2.User]:
    found: list[users_pb2.User] = []
    token = ""
    while True:
        page = await users.ListUsers(
            users_pb2.ListUsersRequest(page_size=7, page_token=token, **filters),  # type: ignore[arg-type]
            metadata=admin.metadata,
            timeout=DEADLINE,
        )
        assert len(page.users) <= 7
        found += page.users
        token = page.next_page_token
        if not token:
            return found


async def test_list_users_filters_match_the_database(
    app: App, channel: grpc.aio.Channel, users: Stub, admin: support.TestUser
) -> None:
    role = unique("r")
    await roles_pb2_grpc.RoleServiceStub(channel).CreateRole(
        roles_pb2.CreateRoleRequest(name=role), metadata=admin.metadata, timeout=DEADLINE
    )
    holders = [await make_user(app, role, "free_user") for _ in range(9)]
    await make_user(app, role, active=False)
    everyone = await _all_pages(users, admin)
    names = [u.username for u in everyone]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert len(everyone) == await count_rows(app, "select count(*) from users")
    with_role = await _all_pages(users, admin, role=role, is_active=True)
    assert {u.id for u in with_role} == {str(h.id) for h in holders}
    assert all(list(u.roles) == sorted([role, "free_user"]) for u in with_role)
    assert len(await _all_pages(users, admin, role=role)) == 10
    bare = await _all_pages(users, admin, without_roles=True)
    expected = await count_rows(
        app,
        "select count(*) from users u "
        "where not exists (select from user_roles where user_id = u.id)",
    )
    assert len(bare) == expected and all(not u.roles for u in bare)
    inactive = await _all_pages(users, admin, is_active=False)
    assert inactive and all(not u.is_active for u in inactive)


async def test_list_users_invalid(users: Stub, admin: support.TestUser) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    first = await users.ListUsers(users_pb2.ListUsersRequest(page_size=1), **md)
    assert first.next_page_token
    for request in (
        users_pb2.ListUsersRequest(page_size=-1),
        users_pb2.ListUsersRequest(page_token="bogus"),
        # A token is bound to the filters it was issued for.
        users_pb2.ListUsersRequest(page_token=first.next_page_token, is_active=True),
        users_pb2.ListUsersRequest(role="admin", without_roles=True),
        users_pb2.ListUsersRequest(role="Not A Role"),
    ):
        await expect_error(users.ListUsers(request, **md), grpc.StatusCode.INVALID_ARGUMENT)
    await expect_error(
        users.ListUsers(users_pb2.ListUsersRequest(role="no_such_role"), **md),
        grpc.StatusCode.NOT_FOUND,
        "ROLE_NOT_FOUND",
    )
    big = await users.ListUsers(users_pb2.ListUsersRequest(page_size=10**9), **md)
    assert len(big.users) <= 500


async def test_update_user(app: App, users: Stub, admin: support.TestUser) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    hank = await make_user(app, "free_user")
    before = await users.GetUser(users_pb2.GetUserRequest(id=str(hank.id)), **md)
    new_email = f"{unique('e')}@example.org"
    updated = await users.UpdateUser(
        users_pb2.UpdateUserRequest(
            user=users_pb2.User(id=str(hank.id), email=new_email, username="ignored"),
            update_mask=_mask("email"),
        ),
        **md,
    )
    assert (updated.email, updated.username, updated.is_active) == (new_email, hank.username, True)
    assert updated.update_time.ToNanoseconds() > before.update_time.ToNanoseconds()
    # Deactivated: the user's token stops working on the next call.
    await users.GetCurrentUser(users_pb2.GetCurrentUserRequest(), metadata=hank.metadata)
    off = await users.UpdateUser(
        users_pb2.UpdateUserRequest(
            user=users_pb2.User(id=str(hank.id), is_active=False), update_mask=_mask("is_active")
        ),
        **md,
    )
    assert not off.is_active and off.email == new_email
    await expect_error(
        users.GetCurrentUser(users_pb2.GetCurrentUserRequest(), metadata=hank.metadata),
        grpc.StatusCode.UNAUTHENTICATED,
    )


async def test_update_user_invalid(app: App, users: Stub, admin: support.TestUser) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    other = await make_user(app)
    uid = str(admin.id)
    for request, code in [
        (users_pb2.UpdateUserRequest(user=users_pb2.User(id=uid)), "INVALID_ARGUMENT"),
        (
            users_pb2.UpdateUserRequest(user=users_pb2.User(id=uid), update_mask=_mask("username")),
            "INVALID_ARGUMENT",
        ),
        (
            users_pb2.UpdateUserRequest(
                user=users_pb2.User(id=uid, email="nope"), update_mask=_mask("email")
            ),
            "INVALID_ARGUMENT",
        ),
        (
            users_pb2.UpdateUserRequest(
                user=users_pb2.User(id=str(uuid.uuid4()), is_active=True),
                update_mask=_mask("is_active"),
            ),
            "NOT_FOUND",
        ),
        (
            users_pb2.UpdateUserRequest(
                user=users_pb2.User(id=uid, email=f"{other.username}@example.com"),
                update_mask=_mask("email"),
            ),
            "ALREADY_EXISTS",
        ),
    ]:
        await expect_error(users.UpdateUser(request, **md), getattr(grpc.StatusCode, code))


async def _insert_documents(app: App, owner: uuid.UUID) -> None:
    async with app.engine.begin() as conn:
        await conn.execute(
            text(
                "insert into documents (title, owner_id, is_deleted) "
                "values ('live', :o, false), ('gone', :o, true)"
            ),
            {"o": owner},
        )


async def test_delete_user(
    app: App, channel: grpc.aio.Channel, users: Stub, admin: support.TestUser
) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    plain = await make_user(app, "free_user")
    await users.DeleteUser(users_pb2.DeleteUserRequest(id=str(plain.id)), **md)
    await expect_error(
        users.DeleteUser(users_pb2.DeleteUserRequest(id=str(plain.id)), **md),
        grpc.StatusCode.NOT_FOUND,
        "USER_NOT_FOUND",
    )
    await expect_error(
        users.DeleteUser(users_pb2.DeleteUserRequest(id="x"), **md),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert (
        await count_rows(app, "select count(*) from user_roles where user_id = :u", u=plain.id) == 0
    )


async def test_delete_user_who_owns_documents(
    app: App, channel: grpc.aio.Channel, users: Stub, admin: support.TestUser
) -> None:
    """Refused without force; with force, documents (soft-deleted too), memberships and the
    user go in one transaction, and grants they made keep granted_by NULL."""
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    ivan = await make_user(app, "admin", "paid_user")
    await _insert_documents(app, ivan.id)
    roles = roles_pb2_grpc.RoleServiceStub(channel)
    config = await roles.CreateConfiguration(
        roles_pb2.CreateConfigurationRequest(name=unique("c")), **md
    )
    await roles.GrantConfiguration(
        roles_pb2.GrantConfigurationRequest(
            role="paid_user", configuration_id=config.id, access_level=1
        ),
        metadata=ivan.metadata,
        timeout=DEADLINE,
    )
    delete = users_pb2.DeleteUserRequest(id=str(ivan.id))
    await expect_error(
        users.DeleteUser(delete, **md), grpc.StatusCode.FAILED_PRECONDITION, "USER_OWNS_DOCUMENTS"
    )
    assert (
        await count_rows(app, "select count(*) from documents where owner_id = :u", u=ivan.id) == 2
    )
    await users.DeleteUser(users_pb2.DeleteUserRequest(id=str(ivan.id), force=True), **md)
    for sql in (
        "select count(*) from documents where owner_id = :u",
        "select count(*) from user_roles where user_id = :u",
        "select count(*) from users where id = :u",
        "select count(*) from role_configurations where granted_by = :u",
    ):
        assert await count_rows(app, sql, u=ivan.id) == 0, sql
    grants = await roles.ListRoleConfigurations(
        roles_pb2.ListRoleConfigurationsRequest(role="paid_user"), **md
    )
    (grant,) = [g for g in grants.grants if g.configuration_id == config.id]
    assert grant.granted_by == ""
