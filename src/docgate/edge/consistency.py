"""Read-your-writes at the edge: the call's ``x-docgate-consistency`` token in, the commit's out.

The token a read sends is parsed here (malformed: INVALID_ARGUMENT, reason
MALFORMED_CONSISTENCY_TOKEN) and held for the unit of work, which picks a replica that has
replayed it or the primary (docgate.db.replicas); the position a write's commit reached,
recorded by the unit of work, goes back in the call's trailing metadata (collected by the
edge's wrapper, docgate.edge.calls.add_response_metadata). Installed only when
DOCGATE_DATABASE_READ_URLS names replicas, inside the edge's wrapper: the caller is
authenticated before a token is looked at.

A read whose replica failed under it (stopped, or a query cancelled for a conflict with
recovery: docgate.db.consistency.ReplicaFailed) runs once more, on the primary: the call had
written nothing, so running it again is safe, and the caller never sees the replica's fault.
docgate's reading and writing RPCs are all unary; a streaming one would pass through as is.
"""

from __future__ import annotations

from typing import Any

import grpc

from docgate import policy
from docgate.db.consistency import (
    HEADER,
    CallConsistency,
    ReplicaFailed,
    call_consistency,
    encode_token,
    token_from,
)
from docgate.edge.calls import add_response_metadata
from docgate.edge.handlers import Context, Continuation, Handler, ServerInterceptor


def _answer_token(context: Context, call: CallConsistency) -> None:
    if call.committed is not None:  # sent by the edge's wrapper with the status
        add_response_metadata(HEADER, encode_token(call.committed))


def _unary_with_retry(behavior: Any) -> Any:
    async def call(request: Any, context: Context) -> Any:
        with call_consistency(token_from(context.invocation_metadata())) as state:
            try:
                response = await behavior(request, context)
            except ReplicaFailed:
                state.primary_only = True
                response = await behavior(request, context)
            _answer_token(context, state)
            return response

    return call


class ConsistencyInterceptor(ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:  # None (no such method) passes through: grpc answers UNIMPLEMENTED
        handler = await continuation(handler_call_details)
        if handler is None or policy.is_public_method(handler_call_details.method):
            return handler  # type: ignore[return-value]
        if handler.unary_unary is None:  # docgate serves no streaming RPC that reads or writes
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _unary_with_retry(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
