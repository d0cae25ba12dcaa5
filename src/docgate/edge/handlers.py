"""What wrapping grpc.aio method handlers needs (docgate.edge.calls does the wrapping).

`Around` is an async context manager *around the call*: entered in the RPC's own task before
the servicer runs and exited after the servicer's answer — or its last streamed message — so a
ContextVar it sets is seen by the servicer and by nothing else, and an exception the servicer
raises passes out through it (authentication is one: docgate.edge.auth).

Request bytes that do not parse are not grpc's to answer (it would say UNKNOWN with the
exception text, before any interceptor runs): the `tolerant` deserializer hands on a
`MALFORMED` marker instead, and the call answers INVALID_ARGUMENT (`malformed_request`) — for
every method, in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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


def malformed_request() -> InvalidArgument:
    return InvalidArgument(
        "the request is not a valid message of this method's request type",
        field="request",
        reason="MALFORMED_REQUEST",
    )


def tolerant(deserializer: Any) -> Any:
    if deserializer is None or getattr(deserializer, "docgate_tolerant", False):
        return deserializer

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # any parse failure: DecodeError, UnicodeDecodeError, ...
            return MALFORMED

    parse.docgate_tolerant = True  # type: ignore[attr-defined]
    return parse
