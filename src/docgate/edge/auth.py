"""Authentication at the door: bearer JWT → Principal (roles from the database, or from the
per-process cache that PostgreSQL invalidates on every change and that is bypassed whenever it
cannot be sure: docgate.repositories.principal_cache; either way a revocation or deactivation
takes effect on the caller's next call) → function-level
check from the policy table → the servicer runs with the Principal set (docgate.principal),
inside the RPC's connection (checked out here, joined by the servicer's unit of work). Every
kind of handler is authenticated alike, streaming ones included.

Every refusal is logged at INFO with its cause (tokens.TokenRejected) and, through the request
id filter, the call's request id; the caller gets one generic message."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from docgate import policy
from docgate.db.uow import UnitOfWork
from docgate.edge.handlers import Around, Context
from docgate.principal import Principal, acting_as
from docgate.repositories.principal_cache import PrincipalCache
from docgate.tokens import TokenRejected, TokenVerifier

log = logging.getLogger(__name__)

_BEARER = "bearer "
# Well above any real JWT; longer values are refused before any parsing.
_MAX_TOKEN_LENGTH = 8192


def bearer_token(metadata: Any) -> str:
    """The token from exactly one ``authorization: Bearer <token>`` entry."""
    values = [value for key, value in (metadata or ()) if key == "authorization"]
    if not values:
        raise TokenRejected("no authorization metadata")
    if len(values) != 1 or not isinstance(values[0], str):
        raise TokenRejected("more than one authorization entry")
    header = values[0]
    if header[: len(_BEARER)].lower() != _BEARER:
        raise TokenRejected("authorization is not 'Bearer <token>'")
    token = header[len(_BEARER) :].strip()
    if not token:
        raise TokenRejected("empty bearer token")
    if len(token) > _MAX_TOKEN_LENGTH:
        raise TokenRejected(f"bearer token longer than {_MAX_TOKEN_LENGTH} characters")
    return token


def _log_refusal(method: str, context: Context, cause: str) -> None:
    log.info("UNAUTHENTICATED %s from %s: %s", method, context.peer(), cause)


class AuthInterceptor:
    def __init__(
        self, verifier: TokenVerifier, uow: UnitOfWork, principals: PrincipalCache
    ) -> None:
        self._verifier = verifier
        self._uow = uow
        self._principals = principals

    @asynccontextmanager
    async def _as_caller(self, method: str, context: Context) -> AsyncIterator[None]:
        try:
            user_id = self._verifier.verify(bearer_token(context.invocation_metadata()))
        except TokenRejected as rejected:
            _log_refusal(method, context, rejected.cause)
            raise
        async with self._uow.rpc() as connection:
            principal: Principal | None = await self._principals.load(connection, user_id)
            if principal is None:  # unknown or deactivated user: same answer as a bad token
                cause = f"user {user_id} unknown or inactive"
                _log_refusal(method, context, cause)
                raise TokenRejected(cause)
            policy.check_rpc_access(method, principal)
            with acting_as(principal):
                yield

    def around(self, method: str) -> Around | None:
        """What authenticates one call of ``method``, run by the edge's one wrapper
        (docgate.edge.calls) around the servicer; None for a public method (no token)."""
        if policy.is_public_method(method):
            return None
        return functools.partial(self._as_caller, method)
