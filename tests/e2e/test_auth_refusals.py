"""Refusals a person can diagnose: every UNAUTHENTICATED is logged at INFO with its cause and
the request id, never the token; the caller sees TOKEN_EXPIRED or INVALID_TOKEN and one
generic message. PERMISSION_DENIED names the method."""

from __future__ import annotations

import logging
import time
import uuid

import grpc
import grpc.aio
import jwt
import pytest
from docgate.v1 import roles_pb2, roles_pb2_grpc, users_pb2, users_pb2_grpc

from docgate.bootstrap import App
from docgate.edge.requests import HEADER, install_request_id_filter
from docgate.tokens import GENERIC_MESSAGE, TokenMinter
from tests.support import TEST_SECRET, error_info, expect_error, make_user

REQUEST = users_pb2.GetCurrentUserRequest()


def _signed(sub: uuid.UUID, **claims: object) -> str:
    now = int(time.time())
    payload: dict[str, object] = {"sub": str(sub), "iat": now, "exp": now + 60, **claims}
    return jwt.encode(payload, TEST_SECRET, algorithm="HS256")


async def _refusal(
    channel: grpc.aio.Channel,
    caplog: pytest.LogCaptureFixture,
    metadata: tuple[tuple[str, str], ...],
) -> tuple[str, logging.LogRecord]:
    """Call GetCurrentUser (it must be refused); the ErrorInfo reason and the one log record."""
    install_request_id_filter([caplog.handler])
    request_id = uuid.uuid4().hex
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="docgate"):
        error = await expect_error(
            users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
                REQUEST, metadata=(*metadata, (HEADER, request_id)), timeout=10
            ),
            grpc.StatusCode.UNAUTHENTICATED,
        )
    assert error.details() == GENERIC_MESSAGE
    records = [r for r in caplog.records if r.getMessage().startswith("UNAUTHENTICATED")]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    assert records[0].levelno == logging.INFO
    assert getattr(records[0], "request_id", None) == request_id
    info = error_info(error)
    assert info is not None
    return info.reason, records[0]


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_each_cause_is_logged_and_only_expiry_is_told(
    app: App, channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    user = await make_user(app, "free_user")
    gone = await make_user(app, "free_user", active=False)
    expired = _signed(user.id, iat=int(time.time()) - 600, exp=int(time.time()) - 300)
    cases = [
        ((), "INVALID_TOKEN", "no authorization metadata"),
        ((("authorization", "Basic xyz"),), "INVALID_TOKEN", "is not 'Bearer <token>'"),
        (_bearer("garbage"), "INVALID_TOKEN", "malformed token"),
        (_bearer(expired), "TOKEN_EXPIRED", "token expired"),
        (_bearer(_signed(user.id, nbf=int(time.time()) + 600)), "INVALID_TOKEN", "not yet valid"),
        (_bearer(user.token[:-4] + "AAAA"), "INVALID_TOKEN", "bad signature"),
        (_bearer(gone.token), "INVALID_TOKEN", f"user {gone.id} unknown or inactive"),
        (_bearer(_signed(uuid.uuid4())), "INVALID_TOKEN", "unknown or inactive"),
    ]
    for metadata, reason, cause in cases:
        got_reason, record = await _refusal(channel, caplog, metadata)
        assert got_reason == reason, cause
        message = record.getMessage()
        assert cause in message
        assert "/docgate.v1.UserService/GetCurrentUser" in message
        for _, value in metadata:
            assert value.removeprefix("Bearer ") not in message  # never the token


async def test_a_valid_token_is_not_logged_as_a_refusal(
    app: App, channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    user = await make_user(app, "free_user")
    token = TokenMinter(app.settings).mint(user.id, 60)
    with caplog.at_level(logging.INFO, logger="docgate"):
        await users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
            REQUEST, metadata=_bearer(token), timeout=10
        )
    assert not [r for r in caplog.records if "UNAUTHENTICATED" in r.getMessage()]


async def test_permission_denied_names_the_method(app: App, channel: grpc.aio.Channel) -> None:
    carol = await make_user(app, "free_user")
    stub = roles_pb2_grpc.RoleServiceStub(channel)
    error = await expect_error(
        stub.CreateRole(roles_pb2.CreateRoleRequest(name="x_role"), metadata=carol.metadata),
        grpc.StatusCode.PERMISSION_DENIED,
        "METHOD_NOT_ALLOWED",
    )
    assert error.details() == "docgate.v1.RoleService/CreateRole is available to admins only"
    error = await expect_error(
        stub.ListUserRoles(
            roles_pb2.ListUserRolesRequest(user_id=str(uuid.uuid4())), metadata=carol.metadata
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "METHOD_NOT_ALLOWED",
    )
    assert error.details() == (
        "docgate.v1.RoleService/ListUserRoles is available to admins; "
        "a non-admin may only ask about themselves"
    )
