"""The single border where errors become gRPC statuses.

Domain errors keep their code and message and gain a google.rpc.ErrorInfo (domain "docgate").
Database errors were already translated into domain errors at the database boundary
(docgate.db.errors), so this edge maps only docgate's own errors. Anything else is a bug:
logged with its traceback and answered INTERNAL with a generic message, never the exception
text, and an ErrorInfo (reason ``INTERNAL``) whose metadata carries the request id, so the
caller's support ticket can name the log lines; a NotImplementedError is UNIMPLEMENTED. A
client's cancellation and grpc's own AbortError pass through untouched (docgate.edge.calls,
the one wrapper around every call, decides which is which and calls `status_of`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from docgate.edge.requests import current_request_id
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


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...] = ()


def status_of(error: Exception, method: str) -> grpc.Status:
    """The status that answers ``error`` raised by a call of ``method``. Call it in the
    ``except`` block: an unknown exception is a bug, logged here with its traceback (and,
    through the request id filter, the call's request id)."""
    if isinstance(error, DocgateError):
        return status_for(error)
    if isinstance(error, NotImplementedError):  # e.g. a generated base's UNIMPLEMENTED stub
        return _Status(grpc.StatusCode.UNIMPLEMENTED, "method not implemented")
    log.exception("unhandled error in %s", method)
    return status_for(internal_error())
