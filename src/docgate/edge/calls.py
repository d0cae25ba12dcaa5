"""The one wrapper around every call: request id, authentication, error mapping, metrics and
the access log, in that order, in one coroutine per call.

It replaces three stacked interceptors (request id, error mapping, auth), each of which built
a new method handler on every call and ran its own async context manager around the servicer.
Here the wrapped handler is built once per method (`CallInterceptor` keeps it, keyed by the
handler grpc resolved, so a re-registered service is re-wrapped) and a unary call runs as one
``try`` block:

1. the request id (docgate.edge.requests) is bound to the call's context (and goes back in the
   call's trailing metadata, with its status);
2. a non-public method is authenticated by docgate.edge.auth (its ``around``), which sets the
   Principal for the servicer;
3. the servicer runs; what it raises becomes a status (docgate.edge.errors.status_of: domain
   errors with their ErrorInfo, anything else INTERNAL, logged with its traceback);
4. the outcome is noted for the metrics (docgate.edge.metrics) and, when the access log is
   on, for its one record on the ``docgate.access`` logger (docgate.edge.access), both
   written in batches (docgate.edge.batches). The record: method, code, duration_ms, user_id,
   peer and the request id. Never a token, an e-mail or content: it is built from those
   fields only.

Per-call response metadata: code running inside a call may add trailing metadata with
`add_response_metadata` (e.g. a consistency token on writes); it is sent with the call's
status, on success and on failure alike. This is the one place where such metadata is
collected: add a key there rather than another wrapper.

Request bytes that do not parse reach the call as `handlers.MALFORMED` and are answered
INVALID_ARGUMENT here, for every method (docgate.edge.handlers).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import grpc.aio

from docgate.edge.access import AccessLog
from docgate.edge.auth import AuthInterceptor
from docgate.edge.errors import status_of
from docgate.edge.handlers import (
    MALFORMED,
    Around,
    Context,
    Continuation,
    Handler,
    ServerInterceptor,
    malformed_request,
    tolerant,
)
from docgate.edge.metrics import MethodMetrics, Metrics, auth_reason, grpc_type
from docgate.edge.requests import (
    HEADER,
    WORKER_HEADER,
    bind_request_id,
    request_id_from,
    reset_request_id,
)
from docgate.principal import Principal, current_principal
from docgate.tokens import TokenRejected

_OK = grpc.StatusCode.OK


class _Call:
    """One call's own state."""

    __slots__ = ("headers", "principal", "request_id", "response_metadata", "started")

    def __init__(self, request_id: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.request_id = request_id
        self.started = time.perf_counter()
        self.principal: Principal | None = None
        # Trailing metadata goes with the status (answered or refused). The id also goes in an
        # answer's initial metadata (the contract, docs/operations.md), sent once the handler
        # has its answer: headers sent earlier would commit the call and stop clients from
        # retrying it (gRFC A6). That is a batch of its own in grpc.aio (~0.1 ms of CPU).
        self.response_metadata: list[tuple[str, str]] = [(HEADER, request_id), *extra]
        self.headers: tuple[tuple[str, str], ...] = ((HEADER, request_id), *extra)


_current_call: ContextVar[_Call | None] = ContextVar("docgate_call", default=None)


def add_response_metadata(key: str, value: str) -> None:
    """Send ``key: value`` in the current call's trailing metadata (outside a call: ignored)."""
    call = _current_call.get()
    if call is not None:
        call.response_metadata.append((key, value))


@dataclass(frozen=True, slots=True)
class _Method:
    path: str
    metrics: MethodMetrics | None
    authenticate: Around | None


class CallInterceptor(ServerInterceptor):
    """The edge's only interceptor (tracing, when on, goes outside it: docgate.edge.tracing)."""

    def __init__(
        self,
        auth: AuthInterceptor,
        metrics: Metrics | None = None,
        *,
        access_log: AccessLog | None = None,
        worker: str | None = None,
    ) -> None:
        # ``worker``: a worker of `serve --workers N` names itself (INDEX/PID) in every answer's
        # metadata, next to the request id (docs/scaling.md).
        self._extra: tuple[tuple[str, str], ...] = (
            () if worker is None else ((WORKER_HEADER, worker),)
        )
        self._auth = auth
        self._metrics = metrics
        self._access_log = access_log
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:  # None (no such method) passes through: grpc answers UNIMPLEMENTED
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # type: ignore[return-value]
        path = handler_call_details.method
        known = self._wrapped.get(path)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(path, handler)
        self._wrapped[path] = (handler, wrapped)
        return wrapped

    # --- building the handler, once per method ------------------------------------------------

    def _wrap(self, path: str, handler: Handler) -> Handler:
        kind = grpc_type(handler.request_streaming, handler.response_streaming)
        method = _Method(
            path,
            self._metrics.for_method(path, kind) if self._metrics is not None else None,
            self._auth.around(path),
        )
        codec = {
            "request_deserializer": tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary, streamed=False), **codec
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream, streamed=False), **codec
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary, streamed=True), **codec
            )
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(method, handler.stream_stream, streamed=True), **codec
        )

    def _unary(self, method: _Method, behavior: Any, *, streamed: bool) -> Any:
        async def call(request: Any, context: Context) -> Any:
            state, tokens = self._begin(method, context)
            try:
                try:
                    request = self._requests(method, request, streamed)
                    if method.authenticate is None:
                        response = await behavior(request, context)
                    else:
                        async with method.authenticate(context):
                            state.principal = current_principal()
                            response = await behavior(request, context)
                except BaseException as error:
                    await self._failed(method, state, context, error)
                if method.metrics is not None:
                    method.metrics.send()
                self._succeeded(method, state, context)
                await context.send_initial_metadata(state.headers)
                return response
            finally:
                self._end(tokens)

        return call

    def _streaming(self, method: _Method, behavior: Any, *, streamed: bool) -> Any:
        async def call(request: Any, context: Context) -> AsyncIterator[Any]:
            state, tokens = self._begin(method, context)
            try:
                authenticate = method.authenticate
                try:
                    request = self._requests(method, request, streamed)
                    async with authenticate(context) if authenticate else contextlib.nullcontext():
                        state.principal = current_principal()
                        result = behavior(request, context)
                        if inspect.isasyncgen(result):
                            headers = state.headers
                            async for response in result:
                                if headers:
                                    with contextlib.suppress(grpc.aio.UsageError):
                                        await context.send_initial_metadata(headers)
                                    headers = ()
                                yield response
                                if method.metrics is not None:
                                    method.metrics.send()
                        else:  # a coroutine that writes with context.write()
                            await result
                except BaseException as error:
                    await self._failed(method, state, context, error)
                self._succeeded(method, state, context)
            finally:
                self._end(tokens)

        return call

    # --- one call -----------------------------------------------------------------------------

    def _begin(self, method: _Method, context: Context) -> tuple[_Call, tuple[Any, Any]]:
        request_id = request_id_from(context.invocation_metadata())
        state = _Call(request_id, self._extra)
        if method.metrics is not None:
            method.metrics.start()
        return state, (bind_request_id(request_id, method.path), _current_call.set(state))

    @staticmethod
    def _end(tokens: tuple[Any, Any]) -> None:
        _current_call.reset(tokens[1])
        reset_request_id(tokens[0])

    @staticmethod
    def _requests(method: _Method, request: Any, streamed: bool) -> Any:
        """The request (or, streamed, the messages), counted; malformed bytes refused."""
        counted = method.metrics.receive if method.metrics is not None else None
        if not streamed:
            if counted is not None:
                counted()
            if request is MALFORMED:
                raise malformed_request()
            return request

        async def messages() -> AsyncIterator[Any]:
            async for message in request:
                if counted is not None:
                    counted()
                if message is MALFORMED:
                    raise malformed_request()
                yield message

        return messages()

    def _succeeded(self, method: _Method, state: _Call, context: Context) -> None:
        context.set_trailing_metadata(tuple(state.response_metadata))
        self._finished(method, state, context, context.code() or _OK)

    async def _failed(
        self, method: _Method, state: _Call, context: Context, error: BaseException
    ) -> NoReturn:
        """Answer ``error`` as a status (or let grpc's own outcomes pass), counted and logged."""
        if isinstance(error, grpc.aio.AbortError):  # the servicer aborted: its code stands
            self._finished(method, state, context, context.code() or grpc.StatusCode.UNKNOWN)
            raise error
        # CancelledError (the client went away, or the server's stop), GeneratorExit (a stream
        # closed early): nothing to answer.
        if not isinstance(error, Exception):
            self._finished(method, state, context, grpc.StatusCode.CANCELLED)
            raise error
        if isinstance(error, TokenRejected) and self._metrics is not None:
            self._metrics.auth_failure(auth_reason(error.cause))
        status = status_of(error, method.path)
        self._finished(method, state, context, status.code)
        trailing = tuple(status.trailing_metadata or ()) + tuple(state.response_metadata)
        await context.abort(status.code, status.details, trailing)
        raise AssertionError("abort returned")  # pragma: no cover

    def _finished(
        self, method: _Method, state: _Call, context: Context, code: grpc.StatusCode
    ) -> None:
        seconds = time.perf_counter() - state.started
        if method.metrics is not None:
            method.metrics.finished(code, seconds)
        access = self._access_log
        if access is not None and access.enabled():
            principal = state.principal
            access.add(
                method.path,
                code,
                seconds,
                principal.user_id if principal is not None else None,
                context.peer(),
                state.request_id,
            )
