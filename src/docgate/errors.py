"""Domain errors: what went wrong, in words the caller can act on.

Raised below the edge (nothing there imports grpc); database errors become these in one place,
docgate.db.errors; docgate.edge.errors turns them into a gRPC status with a google.rpc.ErrorInfo.
The tree::

    DocgateError
    ├── InvalidArgument       INVALID_ARGUMENT     bad input, nothing ran
    ├── Unauthenticated       UNAUTHENTICATED      missing or bad credentials
    ├── PermissionDenied      PERMISSION_DENIED    this RPC is not for your role
    ├── NotFound              NOT_FOUND            absent, or hidden from you (the same thing)
    ├── AlreadyExists         ALREADY_EXISTS       unique name taken, already in that state
    ├── FailedPrecondition    FAILED_PRECONDITION  the system is not in a state that allows it
    ├── Aborted               ABORTED              concurrency conflict (etag), retry after re-read
    ├── DeadlineExceeded      DEADLINE_EXCEEDED    a statement ran past its time limit; do not retry
    │                                              the same call blindly
    ├── ResourceExhausted     RESOURCE_EXHAUSTED   the answer would pass a server limit; ask less
    └── Unavailable           UNAVAILABLE          database unreachable or saturated, retry

Every InvalidArgument names the offending request field (``field``): in ErrorInfo metadata
``field`` and, by convention, in its message.
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
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"  # only the edge answers it, for a bug (docgate.edge.errors)


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
    """Bad input; ``field`` is the request field (or field path) at fault."""

    code = Code.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        field: str,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata={"field": field, **(metadata or {})})
        self.field = field


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


class DeadlineExceeded(DocgateError):
    code = Code.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class ResourceExhausted(DocgateError):
    code = Code.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(DocgateError):
    code = Code.UNAVAILABLE
    default_reason = "UNAVAILABLE"


def database_unavailable() -> Unavailable:
    """The one answer while the database cannot serve us; clients should retry."""
    return Unavailable("the database is unavailable; retry later", reason="DATABASE_UNAVAILABLE")


def schema_mismatch() -> Unavailable:
    """Tables or columns missing: the database is not migrated to this build's revision."""
    return Unavailable(
        "the database schema is not the one this server expects; retry later",
        reason="SCHEMA_MISMATCH",
    )


def statement_timeout() -> DeadlineExceeded:
    """A statement hit the server's statement_timeout. Not UNAVAILABLE: clients retry that by
    default, and the same query would time out again, multiplying the load."""
    return DeadlineExceeded(
        "the query took longer than the server allows; narrow the request",
        reason="STATEMENT_TIMEOUT",
    )


def response_too_large(what: str, needed: int, budget: int) -> ResourceExhausted:
    """The answer would pass DOCGATE_MAX_RESPONSE_BYTES; decided before it is built."""
    return ResourceExhausted(
        f"{what} would be about {needed} bytes, over the server's response limit of {budget} "
        "bytes (DOCGATE_MAX_RESPONSE_BYTES); ask for fewer documents per call",
        reason="RESPONSE_TOO_LARGE",
        metadata={"limit": str(budget)},
    )


# The named answers more than one layer gives (a repository's check and the database's
# constraint for the same rule, docgate.db.errors): one wording, one reason.
def document_not_found() -> NotFound:
    """Missing or hidden from the caller: same message, same details, whatever the reason."""
    return NotFound("document not found", reason="DOCUMENT_NOT_FOUND")


# Users and roles are named in the message when the caller named them (their own id, a role
# name from the request): echoing it back hides nothing and tells which of several was wrong.
# Documents never are: hidden is absent.
def user_not_found(who: object | None = None) -> NotFound:
    return NotFound(
        f'user "{who}" not found' if who is not None else "user not found",
        reason="USER_NOT_FOUND",
    )


def role_not_found(name: str | None = None) -> NotFound:
    return NotFound(
        f'role "{name}" not found' if name else "role not found",
        reason="ROLE_NOT_FOUND",
        metadata={"role": name} if name else None,
    )


def configuration_not_found() -> NotFound:
    return NotFound("configuration not found", reason="CONFIGURATION_NOT_FOUND")


def user_exists() -> AlreadyExists:
    return AlreadyExists("a user with that username or email already exists", reason="USER_EXISTS")


def user_owns_documents() -> FailedPrecondition:
    return FailedPrecondition(
        "the user owns documents; delete them first or pass force", reason="USER_OWNS_DOCUMENTS"
    )


def project_not_found() -> NotFound:
    """Missing or hidden from the caller: one answer, as for documents."""
    return NotFound("project not found", reason="PROJECT_NOT_FOUND")


def feedback_not_found() -> NotFound:
    return NotFound("feedback not found", reason="FEEDBACK_NOT_FOUND")


def template_not_found(name: str) -> NotFound:
    return NotFound(
        f"template {name!r} not found", reason="TEMPLATE_NOT_FOUND", metadata={"template": name}
    )


def request_id_reused() -> InvalidArgument:
    return InvalidArgument(
        "request_id was already used for a different request; use a new request_id",
        field="request_id",
        reason="REQUEST_ID_REUSED",
    )
