"""Wrapping grpc.aio method handlers: the one mechanism every docgate server interceptor uses.

An interceptor here is an async context manager *around the call* (`Around`): it is entered
in the RPC's own task before the servicer runs and exited after the servicer's answer — or
its last streamed message — so a ContextVar it sets is seen by the servicer and by nothing
else, and an exception the servicer raises passes out through it. `wrap` applies one to any
kind of handler: unary-unary, unary-stream, stream-unary, stream-stream.

Request bytes that do not parse are not grpc's to answer (it would say UNKNOWN with the
exception text, before any interceptor runs): the wrapped deserializer hands on a `MALFORMED`
marker instead, and the call raises INVALID_ARGUMENT inside ``around`` — for every method, in
this one place.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Final

import grpc
import grpc.aio

from docgate.errors import InvalidArgument

if TYPE_CHECKING:  # the stubs make these generic; the runtime classes are not subscriptable
    Context = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]
    Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]
    ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    Context = Handler = Continuation = Any
    ServerInterceptor = grpc.aio.ServerInterceptor

# What an interceptor runs around one call, given the call's context.
Around = Callable[[Context], AbstractAsyncContextManager[None]]


class _Malformed:
    """Stands in for a request message whose bytes did not parse."""


MALFORMED: Final = _Malformed()


def _malformed() -> InvalidArgument:
    return InvalidArgument(
        "the request is not a valid message of this method's request type",
        field="request",
        reason="MALFORMED_REQUEST",
    )


def _tolerant(deserializer: Any) -> Any:
    if deserializer is None or getattr(deserializer, "docgate_tolerant", False):
        return deserializer

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # any parse failure: DecodeError, UnicodeDecodeError, ...
            return MALFORMED

    parse.docgate_tolerant = True  # type: ignore[attr-defined]
    return parse


def _checked(request: Any, streamed: bool | None) -> Any:
    """The request, or INVALID_ARGUMENT for bytes that did not parse (lazily, per streamed
    message); ``streamed`` None: not this wrapper's job, pass it on."""
    if streamed is None:
        return request
    if not streamed:
        if request is MALFORMED:
            raise _malformed()
        return request

    async def messages() -> AsyncIterator[Any]:
        async for message in request:
            if message is MALFORMED:
                raise _malformed()
            yield message

    return messages()


def _unary_response(behavior: Any, around: Around, streamed: bool | None) -> Any:
    async def call(request: Any, context: Context) -> Any:
        async with around(context):
            return await behavior(_checked(request, streamed), context)

    return call


def _streamed_response(behavior: Any, around: Around, streamed: bool | None) -> Any:
    async def call(request: Any, context: Context) -> AsyncIterator[Any]:
        async with around(context):
            result = behavior(_checked(request, streamed), context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            else:  # a coroutine that writes with context.write()
                await result

    return call


def wrap(
    handler: Handler | None, around: Around, *, checks_requests: bool = False
) -> Handler | None:
    """``handler`` with its behaviour run inside ``around``; None (no such method) stays None,
    so grpc answers UNIMPLEMENTED. Every wrapper parses requests tolerantly; the one with
    ``checks_requests`` (the error interceptor, whose ``around`` maps the error) refuses
    malformed ones."""
    if handler is None:
        return None
    codec = {
        "request_deserializer": _tolerant(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    unary, streamed = (False, True) if checks_requests else (None, None)
    if handler.unary_unary is not None:
        behavior = _unary_response(handler.unary_unary, around, unary)
        return grpc.unary_unary_rpc_method_handler(behavior, **codec)
    if handler.unary_stream is not None:
        behavior = _streamed_response(handler.unary_stream, around, unary)
        return grpc.unary_stream_rpc_method_handler(behavior, **codec)
    if handler.stream_unary is not None:
        behavior = _unary_response(handler.stream_unary, around, streamed)
        return grpc.stream_unary_rpc_method_handler(behavior, **codec)
    behavior = _streamed_response(handler.stream_stream, around, streamed)
    return grpc.stream_stream_rpc_method_handler(behavior, **codec)
