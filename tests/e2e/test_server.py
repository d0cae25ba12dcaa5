"""The real server on a real port: health, reflection, GetCurrentUser, authentication."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import grpc.aio
import jwt
import pytest
from docgate.v1 import users_pb2, users_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from docgate.bootstrap import App, build_app
from docgate.db.embedded import ensure_database
from docgate.server import start_server
from docgate.tokens import TokenMinter
from tests.conftest import settings_for
from tests.support import TEST_SECRET, error_info, make_user, pool_drained

DEADLINE = 10.0


async def test_health_is_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "docgate.v1.UserService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_every_service(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=DEADLINE)]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {
        "docgate.v1.DocumentService",
        "docgate.v1.RoleService",
        "docgate.v1.UserService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


async def test_get_current_user(app: App, channel: grpc.aio.Channel) -> None:
    bob = await make_user(app, "paid_user", "free_user")
    stub = users_pb2_grpc.UserServiceStub(channel)
    me = await stub.GetCurrentUser(
        users_pb2.GetCurrentUserRequest(), metadata=bob.metadata, timeout=DEADLINE
    )
    assert me.id == str(bob.id)
    assert me.username == bob.username
    assert me.email == f"{bob.username}@example.com"
    assert me.is_active
    assert list(me.roles) == ["free_user", "paid_user"]
    assert me.create_time.seconds > 0


def _token(**claims: object) -> str:
    now = int(time.time())
    body = {"sub": str(uuid.uuid4()), "iat": now, "exp": now + 60, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, TEST_SECRET, "HS256")


async def _unauthenticated_cases(app: App) -> dict[str, tuple[tuple[str, str], ...]]:
    inactive = await make_user(app, "admin", active=False)
    expired = _token(sub=str(inactive.id), exp=int(time.time()) - 3600)
    return {
        "no metadata": (),
        "not bearer": (("authorization", "Basic YWxpY2U6cHc="),),
        "garbage": (("authorization", "Bearer not-a-token"),),
        "forged": (("authorization", "Bearer " + jwt.encode({"sub": "x"}, "k" * 40, "HS256")),),
        "expired": (("authorization", f"Bearer {expired}"),),
        "unknown user": (("authorization", f"Bearer {_token()}"),),
        "inactive user": inactive.metadata,
    }


async def test_bad_credentials_are_unauthenticated_with_one_message(
    app: App, channel: grpc.aio.Channel
) -> None:
    stub = users_pb2_grpc.UserServiceStub(channel)
    seen = set()
    for case, metadata in (await _unauthenticated_cases(app)).items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetCurrentUser(
                users_pb2.GetCurrentUserRequest(), metadata=metadata, timeout=DEADLINE
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, case
        info = error_info(caught.value)
        assert info is not None and info.domain == "docgate", case
        seen.add((case, caught.value.details(), info.reason))
    # One message; the reason tells an expired token apart (RFC 6750) and nothing else.
    assert {(details, reason) for _, details, reason in seen} == {
        ("missing or invalid credentials", "INVALID_TOKEN"),
        ("missing or invalid credentials", "TOKEN_EXPIRED"),
    }
    assert {case for case, _, reason in seen if reason == "TOKEN_EXPIRED"} == {"expired"}


async def test_admin_rpc_is_permission_denied_for_free_user(
    app: App, channel: grpc.aio.Channel
) -> None:
    carol = await make_user(app, "free_user")
    stub = users_pb2_grpc.UserServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListUsers(
            users_pb2.ListUsersRequest(), metadata=carol.metadata, timeout=DEADLINE
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_200_concurrent_callers_each_see_only_themselves(
    app: App, channel: grpc.aio.Channel
) -> None:
    roles = [("free_user",), ("paid_user",), ("admin",), (), ("paid_user", "free_user")]
    users = [await make_user(app, *roles[i % len(roles)]) for i in range(200)]
    stub = users_pb2_grpc.UserServiceStub(channel)
    replies = await asyncio.gather(
        *(
            stub.GetCurrentUser(users_pb2.GetCurrentUserRequest(), metadata=u.metadata, timeout=30)
            for u in users
        )
    )
    for user, reply in zip(users, replies, strict=True):
        assert (reply.id, reply.username, tuple(reply.roles)) == (
            str(user.id),
            user.username,
            user.roles,
        )
    assert await pool_drained(app)


async def test_health_follows_the_database(server_url: str) -> None:
    """NOT_SERVING and UNAVAILABLE while the database is missing; SERVING once it exists."""
    from docgate.db import migrations

    name = f"docgate_late_{uuid.uuid4().hex[:8]}"
    from sqlalchemy.engine import make_url

    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    late = build_app(settings_for(url, pool_timeout=1.0), url)
    running = await start_server(late, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            request = health_pb2.HealthCheckRequest(service="")
            await asyncio.sleep(0.5)
            reply = await health.Check(request, timeout=DEADLINE)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            token = TokenMinter(late.settings).mint(uuid.uuid4(), 60)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await users_pb2_grpc.UserServiceStub(ch).GetCurrentUser(
                    users_pb2.GetCurrentUserRequest(),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=DEADLINE,
                )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert name not in (caught.value.details() or "")
            await ensure_database(server_url, name)
            await migrations.upgrade(url)
            for _ in range(50):
                reply = await health.Check(request, timeout=DEADLINE)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    break
                await asyncio.sleep(0.1)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await running.stop(None)


async def test_health_list_names_every_service(channel: grpc.aio.Channel) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).List(
        health_pb2.HealthListRequest(), timeout=DEADLINE
    )
    assert set(reply.statuses) >= {"", "docgate.v1.DocumentService", "docgate.v1.UserService"}
    assert {s.status for s in reply.statuses.values()} == {health_pb2.HealthCheckResponse.SERVING}
