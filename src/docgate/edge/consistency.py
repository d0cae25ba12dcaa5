"""Read-your-writes at the edge: the call's ``x-docgate-consistency`` token in, the commit's out.

The token a read sends is parsed here (malformed: INVALID_ARGUMENT, reason
MALFORMED_CONSISTENCY_TOKEN) and held for the unit of work, which picks a replica that has
replayed it or the primary (docgate.db.replicas); the position a write's commit reached,
recorded by the unit of work, goes back in the call's trailing metadata — trailing, because
the initial metadata (the request id) is sent before the servicer runs. Innermost interceptor:
the caller is authenticated before a token is looked at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from docgate import policy
from docgate.db.consistency import HEADER, call_consistency, encode_token, token_from
from docgate.edge.handlers import Context, Continuation, Handler, ServerInterceptor, wrap


@asynccontextmanager
async def consistent(context: Context) -> AsyncIterator[None]:
    with call_consistency(token_from(context.invocation_metadata())) as call:
        yield
        if call.committed is not None:
            context.set_trailing_metadata(((HEADER, encode_token(call.committed)),))


class ConsistencyInterceptor(ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:  # None (no such method) passes through: grpc answers UNIMPLEMENTED
        handler = await continuation(handler_call_details)
        if policy.is_public_method(handler_call_details.method):
            return handler  # type: ignore[return-value]
        return wrap(handler, consistent)  # type: ignore[return-value]
