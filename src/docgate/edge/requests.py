"""Request ids: one per RPC, so a support ticket, a client's error and the server's log lines
can name the same call.

The id comes from the caller's ``x-request-id`` metadata when it is well-formed (at most 128
characters of ``[A-Za-z0-9._-]``: safe to echo into logs and headers), else it is generated. It
is sent back in the call's trailing metadata (with the status, on success and failure alike)
and in an answer's initial metadata (docgate.edge.calls says when, and what it costs), held in a
module-level ContextVar for the duration of the call (so nothing has to thread it through by
hand), and stamped on every log record by `RequestIdFilter`. The edge's one wrapper
(docgate.edge.calls) sets it first thing in every call, so authentication, error mapping and
the access log all log with it.
"""

from __future__ import annotations

import logging
import random
import re
from contextvars import Token
from typing import Any

from docgate import calls
from docgate.calls import current_request_id

HEADER = "x-request-id"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Shown for records logged outside any RPC (start-up, shutdown, the health watcher).
NO_REQUEST = "-"

# The ContextVar lives in the leaf docgate.calls, so the layers below the edge can read it.
_request_id = calls.request_id
__all__ = ["current_request_id"]


def request_id_from(metadata: Any) -> str:
    """The caller's well-formed ``x-request-id``, else a new one (32 hex digits)."""
    for key, value in metadata or ():
        if key == HEADER and isinstance(value, str) and _WELL_FORMED.fullmatch(value):
            return value
    # An id names a call, it guards nothing: no need for os.urandom on every call (uuid4).
    # random reseeds itself in a forked child, so workers do not repeat each other's ids.
    return f"{random.getrandbits(128):032x}"


def bind_request_id(request_id: str, method: str) -> tuple[Token[str | None], Token[str | None]]:
    """Make ``request_id`` and ``method`` the current call's (docgate.calls; the audit trail
    stamps its entries with both). Undo with `reset_request_id`."""
    return _request_id.set(request_id), calls.method.set(method)


def reset_request_id(tokens: tuple[Token[str | None], Token[str | None]]) -> None:
    _request_id.reset(tokens[0])
    calls.method.reset(tokens[1])


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current RPC's, or "-") to every record it sees that does
    not carry one already (an access record is written after its call, with its call's id:
    docgate.edge.access).

    Attach it to a *handler*: a logger's own filters do not see records propagated from its
    children, a handler's do."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "request_id" not in record.__dict__:
            record.request_id = _request_id.get() or NO_REQUEST
        return True


def install_request_id_filter(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())


# Sent with the request id when serving as one of `serve --workers N`: "INDEX/PID" of the
# worker that answered (docs/scaling.md).
WORKER_HEADER = "x-docgate-worker"
