"""Every kind of handler goes through the edge: a small streaming service, registered for these
tests only, is authenticated, policy-checked and error-mapped like the unary docgate RPCs, and
the registry refuses to serve a method the policy table does not list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, wrappers_pb2

from docgate import policy
from docgate.bootstrap import App, UnlistedMethodError, build_app
from docgate.edge.registry import ServiceBinding
from docgate.errors import NotFound
from docgate.principal import require_principal
from docgate.server import start_server
from tests.conftest import settings_for
from tests.support import expect_error, make_user

SERVICE = "docgate.testing.EchoService"
KINDS = {  # method → (client streams, server streams)
    "Unary": (False, False),
    "ServerStream": (False, True),
    "ClientStream": (True, False),
    "BidiStream": (True, True),
}
Text = wrappers_pb2.StringValue


def _descriptor() -> Any:
    """The test service's descriptor, added once to the default pool (as protoc output is)."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName(SERVICE)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(
        name="docgate_testing/echo.proto",
        package="docgate.testing",
        dependency=["google/protobuf/wrappers.proto"],
        syntax="proto3",
    )
    service = proto.service.add(name="EchoService")
    for name, (client_streaming, server_streaming) in KINDS.items():
        service.method.add(
            name=name,
            input_type=".google.protobuf.StringValue",
            output_type=".google.protobuf.StringValue",
            client_streaming=client_streaming,
            server_streaming=server_streaming,
        )
    pool.Add(proto)
    return pool.FindServiceByName(SERVICE)


def _reply(word: str) -> Text:
    """Who the edge says is calling: proves the principal reached the handler."""
    if "missing" in word:
        raise NotFound("no such word", reason="WORD_NOT_FOUND")
    return Text(value=f"{require_principal().username}:{word}")


class EchoServicer:
    async def Unary(self, request: Text, context: Any) -> Text:
        return _reply(request.value)

    async def ServerStream(self, request: Text, context: Any) -> AsyncIterator[Text]:
        for _ in range(3):
            yield _reply(request.value)

    async def ClientStream(self, requests: AsyncIterator[Text], context: Any) -> Text:
        return _reply("+".join([r.value async for r in requests]))

    async def BidiStream(self, requests: AsyncIterator[Text], context: Any) -> AsyncIterator[Text]:
        async for request in requests:
            yield _reply(request.value)


def _add(servicer: EchoServicer, server: Any) -> None:
    factories = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    handlers = {
        name: factories[kind](
            getattr(servicer, name),
            request_deserializer=Text.FromString,
            response_serializer=Text.SerializeToString,
        )
        for name, kind in KINDS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def _with_echo(app: App) -> App:
    echo = ServiceBinding(EchoServicer(), _add, _descriptor())
    return replace(app, services=(*app.services, echo))


@pytest.fixture
def echo_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = {f"/{SERVICE}/{name}": policy.Access.AUTHENTICATED for name in KINDS}
    rows[f"/{SERVICE}/BidiStream"] = policy.Access.ADMIN
    monkeypatch.setattr(policy, "RPC_ACCESS", {**policy.RPC_ACCESS, **rows})


@asynccontextmanager
async def _echo_channel(database_url: str) -> AsyncIterator[tuple[App, grpc.aio.Channel]]:
    app = _with_echo(build_app(settings_for(database_url), database_url))
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield app, channel
    finally:
        await running.stop(None)


def _stubs(channel: grpc.aio.Channel) -> dict[str, Any]:
    codec = {"request_serializer": Text.SerializeToString, "response_deserializer": Text.FromString}
    path = f"/{SERVICE}/"
    return {
        "Unary": channel.unary_unary(path + "Unary", **codec),
        "ServerStream": channel.unary_stream(path + "ServerStream", **codec),
        "ClientStream": channel.stream_unary(path + "ClientStream", **codec),
        "BidiStream": channel.stream_stream(path + "BidiStream", **codec),
    }


async def _requests(*words: str) -> AsyncIterator[Text]:
    for word in words:
        yield Text(value=word)


async def _call(
    stubs: dict[str, Any], name: str, metadata: Any, words: tuple[str, ...] = ("hi", "hi")
) -> list[str]:
    """Call ``name``; client streams send ``words``. Where the server is expected to refuse the
    call before reading, tests send no words: grpc's aio *client* reports a write that races
    the server's early status as INTERNAL instead of that status (grpc/grpc#36066)."""
    stub = stubs[name]
    word = words[0] if words else ""
    if name == "Unary":
        return [(await stub(Text(value=word), metadata=metadata, timeout=10)).value]
    if name == "ServerStream":
        return [r.value async for r in stub(Text(value=word), metadata=metadata, timeout=10)]
    if name == "ClientStream":
        reply = await stub(_requests(*words), metadata=metadata, timeout=10)
        return [reply.value]
    return [r.value async for r in stub(_requests(*words), metadata=metadata, timeout=10)]


@pytest.mark.usefixtures("echo_policy")
async def test_every_handler_kind_is_authenticated(database_url: str) -> None:
    async with _echo_channel(database_url) as (app, channel):
        admin = await make_user(app, "admin")
        stubs = _stubs(channel)
        name = admin.username
        assert await _call(stubs, "Unary", admin.metadata) == [f"{name}:hi"]
        assert await _call(stubs, "ServerStream", admin.metadata) == [f"{name}:hi"] * 3
        assert await _call(stubs, "ClientStream", admin.metadata) == [f"{name}:hi+hi"]
        assert await _call(stubs, "BidiStream", admin.metadata) == [f"{name}:hi"] * 2
        for kind in KINDS:
            await expect_error(_call(stubs, kind, (), ()), grpc.StatusCode.UNAUTHENTICATED)
            bad = (("authorization", "Bearer not-a-token"),)
            await expect_error(_call(stubs, kind, bad, ()), grpc.StatusCode.UNAUTHENTICATED)


@pytest.mark.usefixtures("echo_policy")
async def test_streams_get_the_policy_check_and_error_mapping(database_url: str) -> None:
    async with _echo_channel(database_url) as (app, channel):
        user = await make_user(app, "free_user")
        stubs = _stubs(channel)
        await expect_error(
            _call(stubs, "BidiStream", user.metadata, ()),
            grpc.StatusCode.PERMISSION_DENIED,
            "METHOD_NOT_ALLOWED",
        )
        for kind in ("Unary", "ServerStream", "ClientStream"):
            await expect_error(
                _call(stubs, kind, user.metadata, ("missing",)),
                grpc.StatusCode.NOT_FOUND,
                "WORD_NOT_FOUND",
            )


async def test_a_served_method_missing_from_the_policy_table_refuses_to_start(
    database_url: str,
) -> None:
    app = _with_echo(build_app(settings_for(database_url), database_url))
    try:
        with pytest.raises(UnlistedMethodError, match="EchoService/Unary"):
            await start_server(app, "127.0.0.1:0")
    finally:
        await app.close()
