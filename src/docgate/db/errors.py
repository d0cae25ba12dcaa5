"""The database boundary for errors: driver and SQLAlchemy exceptions become domain errors here,
and only here (the unit of work applies `database_errors` around every block it hands out).

* outage (connection lost, server shutting down, pool exhausted, login refused) → Unavailable;
* statement timeout (SQLSTATE 57014) → DeadlineExceeded, never Unavailable: clients retry
  UNAVAILABLE by default, and the query would time out again;
* serialization failure / deadlock → Aborted (retry the whole call);
* unique and foreign-key violations → the domain error of the constraint, named in
  `UNIQUE` / `FOREIGN_KEYS` (a foreign key answers one error when the referenced row is
  missing and another when a row still refers to the one being deleted).

Anything else (a check violation, a syntax error) is a bug and passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from docgate import errors
from docgate.errors import AlreadyExists, DocgateError

ErrorFactory = Callable[[], DocgateError]

UNIQUE: Final[Mapping[str, ErrorFactory]] = {
    "uq_users_username": errors.user_exists,
    "uq_users_email": errors.user_exists,
}
# constraint → (the referenced row is missing, the referenced row is still referred to)
FOREIGN_KEYS: Final[Mapping[str, tuple[ErrorFactory, ErrorFactory]]] = {
    "fk_documents_owner_id_users": (errors.user_not_found, errors.user_owns_documents),
    "fk_user_roles_user_id_users": (errors.user_not_found, errors.user_not_found),
    "fk_user_roles_role_id_roles": (errors.role_not_found, errors.role_not_found),
    "fk_role_configurations_configuration_id_configurations": (
        errors.configuration_not_found,
        errors.configuration_not_found,
    ),
    "fk_role_configurations_role_id_roles": (errors.role_not_found, errors.role_not_found),
    "fk_role_configurations_granted_by_users": (errors.user_not_found, errors.user_not_found),
}

# SQLSTATE classes that mean "the database cannot serve us right now": connection exception,
# insufficient resources, operator intervention (shutdown), missing database, rejected login.
_OUTAGE_CLASSES: Final = frozenset({"08", "53", "57", "3D", "28"})
_QUERY_CANCELED: Final = "57014"  # statement_timeout (a client's cancel is CancelledError)
_RETRY_WHOLE_CALL: Final = frozenset({"40001", "40P01"})
_UNIQUE_VIOLATION: Final = "23505"
_FOREIGN_KEY_VIOLATION: Final = "23503"
_RESTRICT_VIOLATION: Final = "23001"  # ON DELETE RESTRICT: always "still referenced"
# A table or column the code expects is missing: the schema is not at this build's revision
# (health says NOT_SERVING and logs which, docgate.db.schema). Retryable once it is migrated.
_SCHEMA_MISMATCH: Final = frozenset({"42P01", "42703"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from (SQLAlchemy wraps the driver's)."""
    cause: BaseException | None = exc
    while cause is not None:
        yield cause
        cause = cause.__cause__


def _driver_error(exc: BaseException) -> Any:
    """The asyncpg exception under ``exc`` (wrapped by SQLAlchemy or raw), or None."""
    for cause in _chain(exc):
        for error in (cause, getattr(cause, "orig", None)):
            if getattr(error, "sqlstate", None):
                return error
    return None


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE under ``exc`` ("" when it carries none)."""
    return str(getattr(_driver_error(exc), "sqlstate", "") or "")


def _constraint(driver_error: Any) -> str:
    name = getattr(driver_error, "constraint_name", None)
    if name is None:  # SQLAlchemy's adapter keeps the asyncpg exception as its cause
        name = getattr(driver_error.__cause__, "constraint_name", None)
    return str(name or "")


def _is_disconnect(exc: BaseException) -> bool:
    lost = OSError | asyncpg.exceptions.ConnectionDoesNotExistError
    return any(isinstance(cause, lost) for cause in _chain(exc))


def _stale_cached_statement(exc: BaseException) -> bool:
    stale = asyncpg.exceptions.InvalidCachedStatementError
    return any(isinstance(cause, stale) for cause in _chain(exc))


def _statement_deletes(exc: BaseException) -> bool:
    statement = getattr(exc, "statement", None) or ""
    return statement.lstrip().upper().startswith("DELETE")


def translate(exc: BaseException) -> DocgateError | None:
    """The domain error ``exc`` means, or None when it is not a database condition we name."""
    if isinstance(exc, sa_exc.TimeoutError) or _stale_cached_statement(exc):
        # A pool checkout timed out; or a statement asyncpg prepared before an online schema
        # change (asyncpg drops it and prepares afresh next time): both retryable.
        return errors.database_unavailable()
    driver_error = _driver_error(exc)
    state = str(getattr(driver_error, "sqlstate", "") or "")
    if state == _QUERY_CANCELED:
        return errors.statement_timeout()
    if (
        state[:2] in _OUTAGE_CLASSES
        or _is_disconnect(exc)
        or (isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated)
    ):
        return errors.database_unavailable()
    if state in _SCHEMA_MISMATCH:
        return errors.schema_mismatch()
    if state in _RETRY_WHOLE_CALL:
        return errors.Aborted(
            "the call conflicted with a concurrent one; retry it", reason="CONCURRENT_UPDATE"
        )
    if state == _UNIQUE_VIOLATION:
        factory = UNIQUE.get(_constraint(driver_error))
        return factory() if factory else AlreadyExists("the resource already exists")
    if state in (_FOREIGN_KEY_VIOLATION, _RESTRICT_VIOLATION):
        missing, in_use = FOREIGN_KEYS.get(_constraint(driver_error), (None, None))
        deleting = state == _RESTRICT_VIOLATION or _statement_deletes(exc)
        factory = in_use if deleting else missing
        if factory is not None:
            return factory()
        return errors.FailedPrecondition("a related resource does not allow this change")
    return None


@contextmanager
def database_errors() -> Iterator[None]:
    """Run a block with database exceptions translated (domain errors pass unchanged)."""
    try:
        yield
    except DocgateError:
        raise
    except Exception as exc:
        error = translate(exc)
        if error is None:
            raise
        raise error from exc


def invalidate_pool(conn: AsyncConnection, raw: Any, exc: BaseException) -> None:
    """What SQLAlchemy's own execution does on a disconnect, for statements run on the driver
    directly (docgate.db.prepared): drop this connection and mark every connection opened
    before it for replacement at its next checkout. Pool._invalidate is private, and no public
    API does both; tests/integration/test_db_errors.py fails loudly if SQLAlchemy removes it."""
    conn.sync_engine.pool._invalidate(raw, exc)
