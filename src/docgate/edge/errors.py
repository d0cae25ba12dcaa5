"""The single border where errors become gRPC statuses.

Domain errors keep their code and message and gain a google.rpc.ErrorInfo (domain "docgate").
Database errors were already translated into domain errors at the database boundary
(docgate.db.errors), so this edge maps only docgate's own errors. Anything else is a bug:
logged with its traceback and answered INTERNAL with a generic message, never the exception
text, and an ErrorInfo (reason ``INTERNAL``) whose metadata carries the request id, so the
caller's support ticket can name the log lines; a NotImplementedError is UNIMPLEMENTED. A
client's cancellation and grpc's own
AbortError pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from docgate.edge.handlers import Context, Continuation, Handler, ServerInterceptor, wrap
from docgate.edge.requests import HEADER, current_request_id
from docgate.errors import Code, DocgateError

log = logging.getLogger(__name__)

DOMAIN = "docgate"
INTERNAL_MESSAGE = "internal error"


class _Internal(DocgateError):
    """What the caller learns about a bug: that it happened, and which call it was."""

    code = Code.INTERNAL
    default_reason = "INTERNAL"


def internal_error() -> DocgateError:
    request_id = current_request_id()
    return _Internal(INTERNAL_MESSAGE, metadata={"request_id": request_id} if request_id else None)


def status_for(error: DocgateError) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    code = code_pb2.Code.Value(error.code.value)
    status = status_pb2.Status(code=code, message=error.message, details=[detail])
    result: grpc.Status = rpc_status.to_status(status)
    return result


async def abort(context: Context, status: grpc.Status) -> NoReturn:
    """context.abort_with_status, spelled with the part the type stubs know."""
    trailers = tuple(status.trailing_metadata)
    request_id = current_request_id()
    if request_id is not None:  # the abort's trailers replace those set before (the id's)
        trailers += ((HEADER, request_id),)
    await context.abort(status.code, status.details, trailers)
    raise AssertionError("abort returned")  # pragma: no cover


@asynccontextmanager
async def statuses(context: Context) -> AsyncIterator[None]:
    """Run one call with its errors answered as statuses."""
    try:
        yield
    except (asyncio.CancelledError, grpc.aio.AbortError):
        raise
    except DocgateError as error:
        await abort(context, status_for(error))
    except NotImplementedError:  # e.g. grpc.health.v1.Health/List in grpcio-health-checking
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "method not implemented")
    except Exception:
        log.exception("unhandled error")
        await abort(context, status_for(internal_error()))


class ErrorMappingInterceptor(ServerInterceptor):
    """Outermost interceptor: every docgate RPC's errors are mapped here."""

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:  # None (no such method) passes through: grpc answers UNIMPLEMENTED
        return wrap(await continuation(handler_call_details), statuses, checks_requests=True)  # type: ignore[return-value]
