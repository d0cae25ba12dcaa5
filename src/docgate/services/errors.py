"""The single border where errors become gRPC statuses.

Domain errors keep their code and message and gain a google.rpc.ErrorInfo (domain "docgate").
Database outages and an exhausted pool answer UNAVAILABLE (retryable). Anything else is a bug:
logged with its traceback and answered INTERNAL with a generic message, never the exception
text. A client's cancellation and grpc's own AbortError pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NoReturn

import asyncpg
import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from sqlalchemy import exc as sa_exc

from docgate.errors import DocgateError, database_unavailable
from docgate.services.handlers import (
    Behavior,
    Continuation,
    Handler,
    ServerInterceptor,
    wrap_unary,
)

log = logging.getLogger(__name__)

DOMAIN = "docgate"
INTERNAL_MESSAGE = "internal error"

_UNAVAILABLE = database_unavailable()


def status_for(error: DocgateError) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    code = code_pb2.Code.Value(error.code.value)
    status = status_pb2.Status(code=code, message=error.message, details=[detail])
    result: grpc.Status = rpc_status.to_status(status)
    return result


async def abort(context: grpc.aio.ServicerContext[Any, Any], status: grpc.Status) -> NoReturn:
    """context.abort_with_status, spelled with the part the type stubs know."""
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("abort returned")  # pragma: no cover


# SQLSTATE classes that mean "the database cannot serve us right now": connection exception,
# insufficient resources, operator intervention (shutdown, statement timeout), missing
# database, rejected login.
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "3D", "28"})


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.TimeoutError):  # pool checkout timed out
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    # The SQLSTATE is on the driver's exception: wrapped by SQLAlchemy (``orig``) or raw from
    # a prepared statement (docgate.db.prepared).
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError | asyncpg.exceptions.ConnectionDoesNotExistError):
            return True
        for error in (cause, getattr(cause, "orig", None)):
            sqlstate = str(getattr(error, "sqlstate", "") or "")
            if sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES:
                return True
        cause = cause.__cause__
    return False


def guard(behavior: Behavior) -> Behavior:
    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except DocgateError as error:
            await abort(context, status_for(error))
        except Exception as exc:
            if _is_outage(exc):
                log.warning("database unavailable: %s", type(exc).__name__)
                await abort(context, status_for(_UNAVAILABLE))
            log.exception("unhandled error")
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)

    return guarded


class ErrorMappingInterceptor(ServerInterceptor):
    """Outermost interceptor: every docgate RPC's errors are mapped here."""

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:  # None (no such method) passes through: grpc answers UNIMPLEMENTED
        return wrap_unary(await continuation(handler_call_details), guard)  # type: ignore[return-value]
