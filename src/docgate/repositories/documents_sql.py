"""Pieces shared by the document repositories: the columns a read selects, the caller's
visibility predicate for Core statements, the read connection and the one NOT_FOUND.

Hot reads are Core statements on the documents table (no ORM identity map, no listener, rows
mapped straight to protobuf). They take their WHERE clause from docgate.policy, looked up on the
module at call time, exactly like the ORM listener does for ORM statements.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import ColumnElement, Table, bindparam
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from docgate import policy
from docgate.auth.principal import Principal
from docgate.db.models import Document
from docgate.errors import NotFound

DOCUMENTS: Final[Table] = Document.__table__  # type: ignore[assignment]
COLUMNS: Final[Any] = DOCUMENTS.c
# Everything mapping.document needs; never the deferred `search` vector.
READ_COLUMNS: Final = (
    COLUMNS.id,
    COLUMNS.title,
    COLUMNS.content,
    COLUMNS.owner_id,
    COLUMNS.is_public,
    COLUMNS.requires_paid_access,
    COLUMNS.create_time,
    COLUMNS.update_time,
    COLUMNS.delete_time,
    COLUMNS.version,
)
# The same columns as ORM attributes, for RETURNING from ORM (listener-filtered) writes.
ORM_READ_COLUMNS: Final = tuple(getattr(Document, column.key) for column in READ_COLUMNS)


# The caller's id as a bind parameter: predicates are built once per role shape (see
# visible_to) and the id is supplied at execution (caller_params).
CALLER_ID: Final = bindparam("caller_id", type_=UUID(as_uuid=True))


def caller_params(principal: Principal) -> dict[str, Any]:
    """The parameters every statement built on visible_to needs (extra keys are ignored)."""
    return {"caller_id": principal.user_id}


def visible_to(principal: Principal, *, show_deleted: bool = False) -> ColumnElement[bool]:
    """The caller's visibility predicate on the documents table, with the caller's id left as
    the CALLER_ID bind parameter; PermissionDenied when a non-admin asks for deleted ones.

    Building a predicate costs more than running the query it guards, so it is built once per
    (policy function, roles, system, show_deleted) by calling the policy with a stand-in
    principal whose user_id is the bind parameter. The policy function is part of the key, so
    replacing it (tests do) takes effect at once.
    """
    return _predicate(policy.document_visibility, principal.roles, principal.system, show_deleted)


@lru_cache(maxsize=512)
def _predicate(
    visibility: Callable[..., policy.Visibility],
    roles: frozenset[str],
    system: bool,
    show_deleted: bool,
) -> ColumnElement[bool]:
    stand_in = Principal(CALLER_ID, "", roles, system)  # type: ignore[arg-type]
    return visibility(stand_in, show_deleted=show_deleted)(COLUMNS)


async def read_connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection (the RPC's own, see docgate.db.uow): Core statements on it
    skip the ORM layer and the listener, whose predicate they carry themselves."""
    return await session.connection()


def document_not_found() -> NotFound:
    """The one answer for a document that is missing or hidden from the caller: same message,
    same details, whatever the reason."""
    return NotFound("document not found", reason="DOCUMENT_NOT_FOUND")
