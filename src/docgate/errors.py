"""Domain errors: what went wrong, in words the caller can act on.

Raised below the servicers (which never import grpc for this); translated into a gRPC status with
a google.rpc.ErrorInfo by docgate.services.errors. The tree::

    DocgateError
    ├── InvalidArgument       INVALID_ARGUMENT     bad input, nothing ran
    ├── Unauthenticated       UNAUTHENTICATED      missing or bad credentials
    ├── PermissionDenied      PERMISSION_DENIED    this RPC is not for your role
    ├── NotFound              NOT_FOUND            absent, or hidden from you (the same thing)
    ├── AlreadyExists         ALREADY_EXISTS       unique name taken, already in that state
    ├── FailedPrecondition    FAILED_PRECONDITION  the system is not in a state that allows it
    ├── Aborted               ABORTED              concurrency conflict (etag), retry after re-read
    └── Unavailable           UNAVAILABLE          database unreachable or saturated, retry
"""

from __future__ import annotations

from enum import Enum


class Code(Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    UNAVAILABLE = "UNAVAILABLE"


class DocgateError(Exception):
    """Base of every error that is meant for the caller.

    ``reason`` is the machine-readable ErrorInfo reason (UPPER_SNAKE_CASE); ``metadata`` is
    ErrorInfo metadata and must never carry anything the caller is not allowed to know.
    """

    code: Code = Code.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = metadata or {}


class InvalidArgument(DocgateError):
    code = Code.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class Unauthenticated(DocgateError):
    code = Code.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DocgateError):
    code = Code.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class NotFound(DocgateError):
    code = Code.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(DocgateError):
    code = Code.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DocgateError):
    code = Code.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(DocgateError):
    code = Code.ABORTED
    default_reason = "ABORTED"


class Unavailable(DocgateError):
    code = Code.UNAVAILABLE
    default_reason = "UNAVAILABLE"


def database_unavailable() -> Unavailable:
    """The one answer while the database cannot serve us; clients should retry."""
    return Unavailable("the database is unavailable; retry later", reason="DATABASE_UNAVAILABLE")
