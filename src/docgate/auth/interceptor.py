"""Authentication at the door: bearer JWT → Principal (roles read from the database on every
call, so a revocation or deactivation takes effect on the caller's next call) → function-level
check from the policy table → the servicer runs with the Principal in the ContextVar, inside the
RPC's connection (checked out here, joined by the servicer's unit of work)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import grpc.aio
from sqlalchemy.ext.asyncio import AsyncConnection

from docgate import policy
from docgate.auth.principal import Principal, acting_as
from docgate.auth.tokens import GENERIC_MESSAGE, TokenVerifier
from docgate.db.uow import UnitOfWork
from docgate.errors import Unauthenticated
from docgate.repositories.principals import load_principal
from docgate.services.handlers import (
    Behavior,
    Continuation,
    Handler,
    ServerInterceptor,
    wrap_unary,
)

_BEARER = "bearer "
# Well above any real JWT; longer values are refused before any parsing.
_MAX_TOKEN_LENGTH = 8192


def bearer_token(metadata: Any) -> str:
    """The token from exactly one ``authorization: Bearer <token>`` entry."""
    values = [value for key, value in (metadata or ()) if key == "authorization"]
    if len(values) != 1 or not isinstance(values[0], str):
        raise Unauthenticated(GENERIC_MESSAGE)
    header = values[0]
    if header[: len(_BEARER)].lower() != _BEARER:
        raise Unauthenticated(GENERIC_MESSAGE)
    token = header[len(_BEARER) :].strip()
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise Unauthenticated(GENERIC_MESSAGE)
    return token


class AuthInterceptor(ServerInterceptor):
    def __init__(self, verifier: TokenVerifier, uow: UnitOfWork) -> None:
        self._verifier = verifier
        self._uow = uow

    async def _authenticate(self, connection: AsyncConnection, user_id: uuid.UUID) -> Principal:
        principal = await load_principal(connection, user_id)
        if principal is None:  # unknown or deactivated user: same answer as a bad token
            raise Unauthenticated(GENERIC_MESSAGE)
        return principal

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:  # None (no such method) passes through: grpc answers UNIMPLEMENTED
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if policy.is_public_method(method) or handler is None:
            return handler  # type: ignore[return-value]
        if handler.unary_unary is None:  # docgate serves no streaming RPCs behind auth
            return None  # type: ignore[return-value]

        def authenticated(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                user_id = self._verifier.verify(bearer_token(context.invocation_metadata()))
                async with self._uow.rpc() as connection:
                    principal = await self._authenticate(connection, user_id)
                    policy.check_rpc_access(method, principal)
                    with acting_as(principal):
                        return await behavior(request, context)

            return call

        return wrap_unary(handler, authenticated)  # type: ignore[return-value]
