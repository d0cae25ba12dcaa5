"""Who is calling: a leaf value every layer may use.

The edge's auth interceptor sets the caller for one RPC (`acting_as`); servicers read it
(`require_principal`); the unit of work hands it to the sessions it opens, where repositories
and the ORM listener read it. The ContextVar lives in the RPC's own task (grpc.aio runs the
interceptor's wrapper and the handler in one task), so a value never leaks to another call. Its
default is None, which every reader treats as "no access at all" (fail closed).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from docgate.errors import Unauthenticated

ADMIN = "admin"
PAID_USER = "paid_user"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    username: str
    roles: frozenset[str]
    # Trusted in-process work (CLI, demo seeding); never produced from a token.
    system: bool = False

    @property
    def is_admin(self) -> bool:
        return self.system or ADMIN in self.roles

    @property
    def is_paid(self) -> bool:
        return PAID_USER in self.roles


SYSTEM = Principal(uuid.UUID(int=0), "system", frozenset(), system=True)

_current: ContextVar[Principal | None] = ContextVar("docgate_principal", default=None)


def current_principal() -> Principal | None:
    """The caller of the current RPC, or None outside an authenticated call."""
    return _current.get()


def require_principal() -> Principal:
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("missing or invalid credentials")
    return principal


@contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """Run a block as ``principal``; restores the previous value afterwards."""
    token = _current.set(principal)
    try:
        yield
    finally:
        _current.reset(token)
