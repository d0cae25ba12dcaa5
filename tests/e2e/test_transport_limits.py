"""Connection hygiene in force on a real server: message size limits, keepalive enforcement,
and connections aged out (GOAWAY) so that balancers can rebalance them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio
import pydantic
import pytest
from docgate.v1 import documents_pb2, documents_pb2_grpc, users_pb2, users_pb2_grpc

from docgate.bootstrap import App, build_app
from docgate.config import MESSAGE_OVERHEAD_BYTES, Settings
from docgate.edge.transport import server_options
from docgate.server import RunningServer, start_server
from tests.conftest import settings_for
from tests.support import TEST_SECRET, expect_error, make_user, with_servicer

ME = users_pb2.GetCurrentUserRequest()
OWN = ("grpc.use_local_subchannel_pool", 1)


@asynccontextmanager
async def _serving(app: App) -> AsyncIterator[RunningServer]:
    running = await start_server(app, "127.0.0.1:0")
    try:
        yield running
    finally:
        await running.stop(None)


async def _left_ready(channel: grpc.aio.Channel) -> grpc.ChannelConnectivity:
    """Wait (bounded) until the channel's connection is no longer READY; the new state."""

    async def wait() -> grpc.ChannelConnectivity:
        while (state := channel.get_state()) == grpc.ChannelConnectivity.READY:
            await channel.wait_for_state_change(state)
        return state

    return await asyncio.wait_for(wait(), 60)


async def test_a_request_over_max_receive_message_bytes_is_resource_exhausted(
    database_url: str,
) -> None:
    limit = 1000 + MESSAGE_OVERHEAD_BYTES
    settings = settings_for(database_url, max_content_bytes=1000, max_receive_message_bytes=limit)
    app = build_app(settings, database_url)
    user = await make_user(app, "free_user")
    async with (
        _serving(app) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = documents_pb2_grpc.DocumentServiceStub(channel)

        def create(content: str):  # type: ignore[no-untyped-def]
            document = documents_pb2.Document(title="t", content=content)
            request = documents_pb2.CreateDocumentRequest(document=document)
            return stub.CreateDocument(request, metadata=user.metadata, timeout=10)

        # Under the transport limit the handler answers (the content limit); over it grpc
        # refuses the message before any handler runs.
        await expect_error(
            create("x" * 2000), grpc.StatusCode.INVALID_ARGUMENT, "CONTENT_TOO_LARGE"
        )
        error = await expect_error(create("x" * (limit + 1)), grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert "larger than max" in (error.details() or "")
        assert (await create("x" * 1000)).content == "x" * 1000


class _HugeUsers(users_pb2_grpc.UserServiceServicer):
    """A UserService whose answer is bigger than any real one."""

    async def GetCurrentUser(self, request: Any, context: Any) -> users_pb2.User:
        return users_pb2.User(username="huge", email="x" * 200_000)


async def test_an_answer_over_max_send_message_bytes_is_resource_exhausted(
    database_url: str,
) -> None:
    settings = settings_for(
        database_url,
        max_content_bytes=1000,
        max_response_bytes=64 * 1024,
        max_send_message_bytes=128 * 1024,
    )
    app = with_servicer(build_app(settings, database_url), "docgate.v1.UserService", _HugeUsers())
    user = await make_user(app, "free_user")
    async with (
        _serving(app) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = users_pb2_grpc.UserServiceStub(channel)
        await expect_error(
            stub.GetCurrentUser(ME, metadata=user.metadata, timeout=10),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )


def test_message_limits_leave_room_for_the_largest_valid_message() -> None:
    Settings(jwt_secret=TEST_SECRET)  # the defaults are consistent
    with pytest.raises(pydantic.ValidationError, match="MAX_RECEIVE_MESSAGE_BYTES"):
        Settings(jwt_secret=TEST_SECRET, max_receive_message_bytes=1024 * 1024)
    with pytest.raises(pydantic.ValidationError, match="MAX_SEND_MESSAGE_BYTES"):
        Settings(jwt_secret=TEST_SECRET, max_send_message_bytes=4 * 1024 * 1024)


async def test_max_connection_age_sends_goaway_and_clients_reconnect(database_url: str) -> None:
    settings = settings_for(
        database_url, max_connection_age_seconds=0.5, max_connection_age_grace_seconds=5
    )
    app = build_app(settings, database_url)
    user = await make_user(app, "free_user")
    async with (
        _serving(app) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}", options=[OWN]) as channel,
    ):
        stub = users_pb2_grpc.UserServiceStub(channel)
        await stub.GetCurrentUser(ME, metadata=user.metadata, timeout=10)
        await _left_ready(channel)  # the server aged the connection out
        reply = await stub.GetCurrentUser(ME, metadata=user.metadata, timeout=10)
        assert reply.username == user.username


async def test_keepalive_min_ping_interval_seconds_is_enforced(database_url: str) -> None:
    """A client pinging far more often than allowed is sent GOAWAY (too_many_pings)."""
    settings = settings_for(database_url, keepalive_min_ping_interval_seconds=30)
    app = build_app(settings, database_url)
    user = await make_user(app, "free_user")
    pinging = [
        OWN,
        ("grpc.keepalive_time_ms", 100),
        ("grpc.keepalive_timeout_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    async with (
        _serving(app) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}", options=pinging) as channel,
    ):
        stub = users_pb2_grpc.UserServiceStub(channel)
        await stub.GetCurrentUser(ME, metadata=user.metadata, timeout=10)
        await _left_ready(channel)


def test_keepalive_and_connection_age_settings_become_grpc_arguments() -> None:
    settings = Settings(
        jwt_secret=TEST_SECRET,
        keepalive_time_seconds=7,
        keepalive_timeout_seconds=3,
        keepalive_min_ping_interval_seconds=4,
        max_connection_age_seconds=60,
        max_connection_age_grace_seconds=9,
    )
    options = dict(server_options(settings))
    assert options["grpc.keepalive_time_ms"] == 7000
    assert options["grpc.keepalive_timeout_ms"] == 3000
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 4000
    assert options["grpc.max_connection_age_ms"] == 60_000
    assert options["grpc.max_connection_age_grace_ms"] == 9000
    assert options["grpc.max_receive_message_length"] == settings.max_receive_message_bytes
    assert options["grpc.max_send_message_length"] == settings.max_send_message_bytes
