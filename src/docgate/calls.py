"""Which RPC is running: its request id and its method, a leaf value every layer may read.

The edge (docgate.edge.requests) sets both for the duration of a call; the unit of work reads
them to stamp the audit entry a write leaves (docgate.db.audit). Module-level ContextVars, as
the contextvars documentation asks: each call's task sees only its own values, and outside an
RPC (CLI, demo seeding, tests) both are None.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("docgate_request_id", default=None)
method: ContextVar[str | None] = ContextVar("docgate_rpc_method", default=None)


def current_request_id() -> str | None:
    """The id of the RPC running in this context, if any."""
    return request_id.get()


def current_method() -> str | None:
    """The full method (``/docgate.v1.RoleService/AssignRole``) of the RPC running, if any."""
    return method.get()


@contextmanager
def calling(rpc_method: str, rpc_request_id: str) -> Iterator[None]:
    """Run the block as the call ``rpc_method`` with id ``rpc_request_id``."""
    tokens = request_id.set(rpc_request_id), method.set(rpc_method)
    try:
        yield
    finally:
        request_id.reset(tokens[0])
        method.reset(tokens[1])
