"""Wrapping grpc.aio method handlers: the one mechanism both server interceptors use.

Wrapping the behaviour (rather than setting state in intercept_service) keeps everything an
interceptor does inside the RPC's own call: a ContextVar set by the wrapper is seen by the
servicer and by nothing else, and an exception raised by the servicer passes through it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

if TYPE_CHECKING:  # the stubs make these generic; the runtime classes are not subscriptable
    Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
    Handler = grpc.RpcMethodHandler[Any, Any]
    Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]
    ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    Behavior = Handler = Continuation = Any
    ServerInterceptor = grpc.aio.ServerInterceptor


def wrap_unary(handler: Handler | None, wrap: Callable[[Behavior], Behavior]) -> Handler | None:
    """``handler`` with its unary-unary behaviour wrapped; other handlers unchanged."""
    if handler is None or handler.unary_unary is None:
        return handler
    return grpc.unary_unary_rpc_method_handler(
        wrap(handler.unary_unary),  # type: ignore[arg-type]
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
