"""Request ids: one per RPC, so a support ticket, a client's error and the server's log lines
can name the same call.

The id comes from the caller's ``x-request-id`` metadata when it is well-formed (at most 128
characters of ``[A-Za-z0-9._-]``: safe to echo into logs and headers), else it is generated. It is
sent back in the call's initial metadata, held in a module-level ContextVar for the duration
of the call (so nothing has to thread it through by hand), and stamped on every log record by
`RequestIdFilter`. The interceptor is the outermost one, so the id is set before
authentication and error mapping run and both can log with it.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import grpc

from docgate.edge.handlers import Context, Continuation, Handler, ServerInterceptor, wrap

HEADER = "x-request-id"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Shown for records logged outside any RPC (start-up, shutdown, the health watcher).
NO_REQUEST = "-"

_request_id: ContextVar[str | None] = ContextVar("docgate_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the RPC running in this context, if any."""
    return _request_id.get()


def request_id_from(metadata: Any) -> str:
    """The caller's well-formed ``x-request-id``, else a new one (32 hex digits)."""
    for key, value in metadata or ():
        if key == HEADER and isinstance(value, str) and _WELL_FORMED.fullmatch(value):
            return value
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current RPC's, or "-") to every record it sees.

    Attach it to a *handler*: a logger's own filters do not see records propagated from its
    children, a handler's do."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or NO_REQUEST
        return True


def install_request_id_filter(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())


# Sent with the request id when serving as one of `serve --workers N`: "INDEX/PID" of the
# worker that answered (docs/scaling.md), in the headers already sent, so it costs nothing.
WORKER_HEADER = "x-docgate-worker"


class RequestIdInterceptor(ServerInterceptor):
    """Outermost interceptor: gives every call, docgate's or not, its request id (and, from a
    worker process, ``x-docgate-worker``)."""

    def __init__(self, worker: str | None = None) -> None:
        self._extra = () if worker is None else ((WORKER_HEADER, worker),)

    @asynccontextmanager
    async def _identified(self, context: Context) -> AsyncIterator[None]:
        request_id = request_id_from(context.invocation_metadata())
        token = _request_id.set(request_id)
        try:
            await context.send_initial_metadata(((HEADER, request_id), *self._extra))
            yield
        finally:
            _request_id.reset(token)

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:  # None (no such method) passes through: grpc answers UNIMPLEMENTED
        return wrap(await continuation(handler_call_details), self._identified)  # type: ignore[return-value]
