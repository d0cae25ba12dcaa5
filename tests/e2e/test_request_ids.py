"""Request ids (docgate.edge.requests): one per call, echoed in the answer's initial metadata
(a failure's trailing metadata), on every log record of the call, and in an INTERNAL error's
ErrorInfo."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import grpc.aio
import pytest
from docgate.v1 import users_pb2, users_pb2_grpc

from docgate.bootstrap import App, build_app
from docgate.edge.requests import HEADER, NO_REQUEST, install_request_id_filter
from docgate.server import start_server
from docgate.services.users import UserService
from tests.conftest import settings_for
from tests.support import error_info, make_user, with_servicer

REQUEST = users_pb2.GetCurrentUserRequest()


async def _echoed(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> str:
    call = users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
        REQUEST, metadata=metadata, timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError):  # no token: refused, but still identified
        await call
    # A failed call carries it in its trailers (no early headers: they would block retries).
    ids = [value for key, value in await call.trailing_metadata() or () if key == HEADER]
    assert len(ids) == 1
    return str(ids[0])


async def test_an_answered_call_gets_its_id_too(database_url: str) -> None:
    app: App = build_app(settings_for(database_url), database_url)
    user = await make_user(app, "free_user")
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            call = users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
                REQUEST, metadata=(*user.metadata, (HEADER, "ok-call-1")), timeout=10
            )
            assert (await call).username == user.username
            trailing = [value for key, value in await call.trailing_metadata() if key == HEADER]
    finally:
        await running.stop(None)
    assert trailing == ["ok-call-1"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123_X.y", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("has space", False),
        ("semi;colon", False),
        ("", False),
    ],
)
async def test_a_well_formed_id_is_kept_else_one_is_made(
    channel: grpc.aio.Channel, sent: str, kept: bool
) -> None:
    echoed = await _echoed(channel, ((HEADER, sent),))
    if kept:
        assert echoed == sent
    else:
        assert echoed != sent
        assert len(echoed) == 32
        int(echoed, 16)


async def test_each_call_without_an_id_gets_its_own(channel: grpc.aio.Channel) -> None:
    assert await _echoed(channel, ()) != await _echoed(channel, ())


async def test_an_answer_carries_its_id_in_initial_metadata(app: App, server: Any) -> None:
    user = await make_user(app, "free_user")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
            REQUEST, metadata=(*user.metadata, (HEADER, "ok-1")), timeout=10
        )
        assert (await call).username == user.username
        assert (HEADER, "ok-1") in tuple(await call.initial_metadata() or ())


async def test_an_internal_error_names_its_request_id_in_log_and_error_info(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(UserService):
        async def GetCurrentUser(self, request: Any, context: Any) -> users_pb2.User:
            logging.getLogger("docgate.test").warning("about to fail")
            raise ZeroDivisionError("secret-internal-detail")

    install_request_id_filter([caplog.handler])
    app: App = build_app(settings_for(database_url), database_url)
    app = with_servicer(app, "docgate.v1.UserService", Broken(app.uow))
    user = await make_user(app, "free_user")
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = users_pb2_grpc.UserServiceStub(channel)
            metadata = (*user.metadata, (HEADER, "ticket-4711"))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.GetCurrentUser(REQUEST, metadata=metadata, timeout=10)
    finally:
        await running.stop(None)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    info = error_info(caught.value)
    assert info is not None
    assert (info.reason, dict(info.metadata)) == ("INTERNAL", {"request_id": "ticket-4711"})
    during = [
        r
        for r in caplog.records
        if r.getMessage() == "about to fail" or r.getMessage().startswith("unhandled error in ")
    ]
    assert len(during) == 2
    assert {getattr(r, "request_id", None) for r in during} == {"ticket-4711"}
    assert during[1].exc_info is not None  # the traceback is logged
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "outside", None, None)
    caplog.handler.handle(outside)
    assert getattr(outside, "request_id", None) == NO_REQUEST
