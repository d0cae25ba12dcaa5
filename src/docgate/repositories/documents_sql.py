"""Pieces shared by the document repositories: the columns a read selects, the caller's
visibility predicate for Core statements, the prepared read query and the one NOT_FOUND.

Hot reads are Core statements on the documents table, compiled once and run on the driver (no
ORM identity map, no listener, records mapped straight to protobuf). They take their WHERE
clause from docgate.policy, looked up on the module, as the ORM listener does for ORM
statements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Final

import asyncpg
from sqlalchemy import ColumnElement, Select, Table, bindparam
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import policy
from docgate.auth.principal import Principal
from docgate.db.models import Document
from docgate.db.prepared import PreparedQuery
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


# The caller's id as a bind parameter: predicates and statements are built once per audience
# (docgate.policy.Audience) and the id is bound at execution.
CALLER_ID: Final = bindparam("caller_id", type_=UUID(as_uuid=True))


def visible_to(principal: Principal, *, show_deleted: bool = False) -> ColumnElement[bool]:
    """The caller's visibility predicate on the documents table, with the caller's id left as
    the CALLER_ID bind parameter; PermissionDenied when a non-admin asks for deleted ones.

    Built by docgate.policy, once per (predicate function, audience): the function is looked up
    on the policy module at call time and is part of the cache key, so replacing it (tests do)
    takes effect at once.
    """
    who = policy.audience(principal, show_deleted=show_deleted)
    return _predicate(policy.document_predicate, who)


@lru_cache(maxsize=64)
def _predicate(
    build: Callable[[policy.Audience, Any, Any], ColumnElement[bool]], who: policy.Audience
) -> ColumnElement[bool]:
    return build(who, COLUMNS, CALLER_ID)


class DocumentQuery:
    """A read statement run as a docgate.db.prepared.PreparedQuery (compiled once, executed on
    asyncpg). The caller's id is bound when the statement uses it (admins' predicates do not);
    values the statement has no parameter for are dropped (a constant predicate can make
    SQLAlchemy fold others away), and a missing one still raises."""

    def __init__(self, statement: Select[Any]) -> None:
        self._query = PreparedQuery(statement)
        self._names = frozenset(statement.compile().params)

    async def fetch(
        self, session: AsyncSession, principal: Principal, **values: Any
    ) -> Sequence[asyncpg.Record]:
        values[CALLER_ID.key] = principal.user_id
        params = {name: value for name, value in values.items() if name in self._names}
        return await self._query.fetch(await session.connection(), **params)


def document_not_found() -> NotFound:
    """The one answer for a document that is missing or hidden from the caller: same message,
    same details, whatever the reason."""
    return NotFound("document not found", reason="DOCUMENT_NOT_FOUND")
