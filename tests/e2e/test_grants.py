"""Configurations and grants through the real server (RoleService, part two)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import grpc.aio
import pytest
from docgate.v1 import roles_pb2, roles_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import text

from docgate.bootstrap import App
from tests import support
from tests.support import expect_error, make_user, unique

DEADLINE = 10.0
Stub = roles_pb2_grpc.RoleServiceStub


@pytest.fixture
def roles(channel: grpc.aio.Channel) -> Stub:
    return roles_pb2_grpc.RoleServiceStub(channel)


async def _sql(app: App, sql: str, **params: object) -> list[dict[str, object]]:
    async with app.engine.begin() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(row._mapping) for row in result] if result.returns_rows else []


async def _db_now(app: App) -> datetime:
    (row,) = await _sql(app, "select now() as now")
    value = row["now"]
    assert isinstance(value, datetime)
    return value


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


async def _setup(roles: Stub, admin: support.TestUser) -> tuple[str, roles_pb2.Configuration]:
    """A fresh custom role and a fresh configuration."""
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    role = unique("r")
    await roles.CreateRole(roles_pb2.CreateRoleRequest(name=role), **md)
    config = await roles.CreateConfiguration(
        roles_pb2.CreateConfigurationRequest(name=unique("cfg-"), description="x"), **md
    )
    return role, config


async def test_configuration_lifecycle(app: App, roles: Stub, admin: support.TestUser) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    name = unique("Config ")
    created = await roles.CreateConfiguration(
        roles_pb2.CreateConfigurationRequest(name=name, description="d"), **md
    )
    assert (created.name, created.description) == (name, "d")
    uuid.UUID(created.id)
    await expect_error(
        roles.CreateConfiguration(roles_pb2.CreateConfigurationRequest(name=name), **md),
        grpc.StatusCode.ALREADY_EXISTS,
        "CONFIGURATION_EXISTS",
    )
    seen: list[str] = []
    token = ""
    while True:
        page = await roles.ListConfigurations(
            roles_pb2.ListConfigurationsRequest(page_size=3, page_token=token), **md
        )
        seen += [c.name for c in page.configurations]
        token = page.next_page_token
        if not token:
            break
    total = await _sql(app, "select count(*) as n from configurations")
    assert len(seen) == len(set(seen)) == total[0]["n"] and name in seen
    await roles.DeleteConfiguration(roles_pb2.DeleteConfigurationRequest(id=created.id), **md)
    await expect_error(
        roles.DeleteConfiguration(roles_pb2.DeleteConfigurationRequest(id=created.id), **md),
        grpc.StatusCode.NOT_FOUND,
        "CONFIGURATION_NOT_FOUND",
    )


@pytest.mark.parametrize("name", ["", "   ", "n" * 101, "a\x00b"])
async def test_create_configuration_invalid_name(
    roles: Stub, admin: support.TestUser, name: str
) -> None:
    await expect_error(
        roles.CreateConfiguration(
            roles_pb2.CreateConfigurationRequest(name=name),
            metadata=admin.metadata,
            timeout=DEADLINE,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_grant_regrant_list_revoke(app: App, roles: Stub, admin: support.TestUser) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    role, config = await _setup(roles, admin)
    before = await _db_now(app)
    expiry = _ts(before + timedelta(days=1))
    grant = await roles.GrantConfiguration(
        roles_pb2.GrantConfigurationRequest(
            role=role, configuration_id=config.id, access_level=2, expire_time=expiry
        ),
        **md,
    )
    assert (grant.role, grant.configuration_id, grant.access_level) == (role, config.id, 2)
    assert grant.granted_by == str(admin.id)
    assert grant.expire_time == expiry
    assert grant.grant_time.ToDatetime(tzinfo=UTC) >= before
    # Granting again updates level and expiry (here: removes it) and refreshes granted_by.
    other = await make_user(app, "admin")
    regrant = await roles.GrantConfiguration(
        roles_pb2.GrantConfigurationRequest(role=role, configuration_id=config.id, access_level=5),
        metadata=other.metadata,
        timeout=DEADLINE,
    )
    assert (regrant.access_level, regrant.HasField("expire_time")) == (5, False)
    assert regrant.granted_by == str(other.id)
    listed = await roles.ListRoleConfigurations(
        roles_pb2.ListRoleConfigurationsRequest(role=role), **md
    )
    assert list(listed.grants) == [regrant]
    rows = await _sql(
        app,
        "select count(*) as n from role_configurations rc join roles r on r.id = rc.role_id "
        "where r.name = :role",
        role=role,
    )
    assert rows[0]["n"] == 1
    revoke = roles_pb2.RevokeConfigurationRequest(role=role, configuration_id=config.id)
    await roles.RevokeConfiguration(revoke, **md)
    await roles.RevokeConfiguration(revoke, **md)  # idempotent
    listed = await roles.ListRoleConfigurations(
        roles_pb2.ListRoleConfigurationsRequest(role=role), **md
    )
    assert list(listed.grants) == []


async def test_grant_validation(app: App, roles: Stub, admin: support.TestUser) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    role, config = await _setup(roles, admin)
    now = await _db_now(app)
    invalid = [
        roles_pb2.GrantConfigurationRequest(role=role, configuration_id=config.id),
        roles_pb2.GrantConfigurationRequest(role=role, configuration_id=config.id, access_level=-3),
        roles_pb2.GrantConfigurationRequest(role=role, configuration_id="x", access_level=1),
        roles_pb2.GrantConfigurationRequest(role="B", configuration_id=config.id, access_level=1),
        roles_pb2.GrantConfigurationRequest(
            role=role, configuration_id=config.id, access_level=1, expire_time=_ts(now)
        ),
        roles_pb2.GrantConfigurationRequest(
            role=role,
            configuration_id=config.id,
            access_level=1,
            expire_time=_ts(now - timedelta(seconds=1)),
        ),
        roles_pb2.GrantConfigurationRequest(
            role=role,
            configuration_id=config.id,
            access_level=1,
            expire_time=Timestamp(seconds=10**12),
        ),
    ]
    for request in invalid:
        await expect_error(
            roles.GrantConfiguration(request, **md), grpc.StatusCode.INVALID_ARGUMENT
        )
    for request, reason in [
        (
            roles_pb2.GrantConfigurationRequest(
                role=role, configuration_id=str(uuid.uuid4()), access_level=1
            ),
            "CONFIGURATION_NOT_FOUND",
        ),
        (
            roles_pb2.GrantConfigurationRequest(
                role="no_such_role", configuration_id=config.id, access_level=1
            ),
            "ROLE_NOT_FOUND",
        ),
    ]:
        await expect_error(
            roles.GrantConfiguration(request, **md), grpc.StatusCode.NOT_FOUND, reason
        )


def _with_unknown_fields(request: roles_pb2.GrantConfigurationRequest, spoof: str) -> bytes:
    """The request followed by fields 5 and 6 (string): what a client that wants to set
    granted_by or grant_time might send. The server must ignore them."""
    raw = spoof.encode()
    extra = b"".join(bytes([tag, len(raw)]) + raw for tag in ((5 << 3) | 2, (6 << 3) | 2))
    return request.SerializeToString() + extra


async def test_granted_by_is_the_caller_and_cannot_be_spoofed(
    app: App, channel: grpc.aio.Channel, roles: Stub, admin: support.TestUser
) -> None:
    role, config = await _setup(roles, admin)
    victim = await make_user(app, "admin")
    grant = channel.unary_unary(
        "/docgate.v1.RoleService/GrantConfiguration",
        request_serializer=lambda raw: raw,
        response_deserializer=roles_pb2.ConfigurationGrant.FromString,
    )
    request = roles_pb2.GrantConfigurationRequest(
        role=role, configuration_id=config.id, access_level=3
    )
    reply = await grant(
        _with_unknown_fields(request, str(victim.id)), metadata=admin.metadata, timeout=DEADLINE
    )
    assert reply.granted_by == str(admin.id)
    rows = await _sql(
        app,
        "select granted_by, granted_at <= now() as past from role_configurations "
        "where configuration_id = :c",
        c=uuid.UUID(config.id),
    )
    assert rows == [{"granted_by": admin.id, "past": True}]


async def test_list_my_configurations(app: App, roles: Stub, admin: support.TestUser) -> None:
    """Max level and soonest expiry over the caller's roles' unexpired grants."""
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    role_a, config = await _setup(roles, admin)
    role_b, only_b = await _setup(roles, admin)
    frank = await make_user(app, "free_user")
    for role in (role_a, role_b):
        await roles.AssignRole(roles_pb2.AssignRoleRequest(user_id=str(frank.id), role=role), **md)
    mine = roles_pb2.ListMyConfigurationsRequest()
    assert (
        list((await roles.ListMyConfigurations(mine, metadata=frank.metadata)).configurations) == []
    )
    now = await _db_now(app)
    soon, later = _ts(now + timedelta(hours=1)), _ts(now + timedelta(hours=2))

    async def grant(role: str, cid: str, level: int, expiry: Timestamp | None) -> None:
        request = roles_pb2.GrantConfigurationRequest(
            role=role, configuration_id=cid, access_level=level, expire_time=expiry
        )
        await roles.GrantConfiguration(request, **md)

    await grant(role_a, config.id, 2, later)
    await grant(role_b, config.id, 7, soon)
    await grant(role_b, only_b.id, 1, None)
    reply = await roles.ListMyConfigurations(mine, metadata=frank.metadata, timeout=DEADLINE)
    got = {c.configuration.id: c for c in reply.configurations}
    assert set(got) == {config.id, only_b.id}
    assert (got[config.id].access_level, got[config.id].expire_time) == (7, soon)
    assert got[config.id].configuration == config
    assert got[only_b.id].access_level == 1 and not got[only_b.id].HasField("expire_time")
    # The admin holds neither role: sees neither configuration.
    reply = await roles.ListMyConfigurations(mine, **md)
    assert not {config.id, only_b.id} & {c.configuration.id for c in reply.configurations}


async def test_grant_expires_by_the_database_clock(
    app: App, roles: Stub, admin: support.TestUser
) -> None:
    """Set through SQL: 0.3 s from the database's now, then again after it has passed."""
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    role, config = await _setup(roles, admin)
    gina = await make_user(app)
    await roles.AssignRole(roles_pb2.AssignRoleRequest(user_id=str(gina.id), role=role), **md)
    await roles.GrantConfiguration(
        roles_pb2.GrantConfigurationRequest(role=role, configuration_id=config.id, access_level=1),
        **md,
    )
    await _sql(
        app,
        "update role_configurations set expires_at = now() + interval '300 milliseconds' "
        "where configuration_id = :c",
        c=uuid.UUID(config.id),
    )
    mine = roles_pb2.ListMyConfigurationsRequest()
    reply = await roles.ListMyConfigurations(mine, metadata=gina.metadata, timeout=DEADLINE)
    assert [c.configuration.id for c in reply.configurations] == [config.id]
    await asyncio.sleep(0.5)
    reply = await roles.ListMyConfigurations(mine, metadata=gina.metadata, timeout=DEADLINE)
    assert list(reply.configurations) == []
    # Still listed for the admin view of the role, with its expiry.
    listed = await roles.ListRoleConfigurations(
        roles_pb2.ListRoleConfigurationsRequest(role=role), **md
    )
    assert [g.HasField("expire_time") for g in listed.grants] == [True]


async def test_delete_configuration_removes_its_grants(
    app: App, roles: Stub, admin: support.TestUser
) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    role, config = await _setup(roles, admin)
    await roles.GrantConfiguration(
        roles_pb2.GrantConfigurationRequest(role=role, configuration_id=config.id, access_level=1),
        **md,
    )
    await roles.DeleteConfiguration(roles_pb2.DeleteConfigurationRequest(id=config.id), **md)
    rows = await _sql(
        app,
        "select count(*) as n from role_configurations where configuration_id = :c",
        c=uuid.UUID(config.id),
    )
    assert rows[0]["n"] == 0


async def test_concurrent_grants_and_revokes_leave_at_most_one_row(
    app: App, roles: Stub, admin: support.TestUser
) -> None:
    md = {"metadata": admin.metadata, "timeout": DEADLINE}
    role, config = await _setup(roles, admin)
    levels = list(range(1, 11))
    calls = [
        roles.GrantConfiguration(
            roles_pb2.GrantConfigurationRequest(
                role=role, configuration_id=config.id, access_level=level
            ),
            **md,
        )
        for level in levels
    ]
    calls += [
        roles.RevokeConfiguration(
            roles_pb2.RevokeConfigurationRequest(role=role, configuration_id=config.id), **md
        )
        for _ in range(3)
    ]
    await asyncio.gather(*calls)  # every call succeeds: upsert and idempotent delete
    rows = await _sql(
        app,
        "select access_level from role_configurations where configuration_id = :c",
        c=uuid.UUID(config.id),
    )
    assert len(rows) <= 1 and all(row["access_level"] in levels for row in rows)
    listed = await roles.ListRoleConfigurations(
        roles_pb2.ListRoleConfigurationsRequest(role=role), **md
    )
    assert [g.access_level for g in listed.grants] == [row["access_level"] for row in rows]
