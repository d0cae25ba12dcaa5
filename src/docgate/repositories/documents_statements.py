"""The List/Search statements, built once per shape and cached.

A shape is (visibility predicate, order, which filters are present, first page or not); every
value — the caller's id, filter values, the keyset bound, the limit, the search text — is a named
bind parameter supplied at execution, each shape compiled once (documents_sql.DocumentQuery).
Building and compiling a statement costs more than a keyset page query at any table size, so
the hot path only binds values.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    String,
    Text,
    bindparam,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import REAL, UUID

from docgate.db.models import Role, UserRole
from docgate.documents_validation import ORDER_BY
from docgate.repositories.documents_sql import COLUMNS, DOCUMENTS, READ_COLUMNS, DocumentQuery

# Bind parameter names (the keys of the execution parameters).
LIMIT: Final = "limit"
AFTER_VALUE: Final = "after_value"
AFTER_ID: Final = "after_id"
QUERY: Final = "query"
FILTERS: Final = ("owner_id", "is_public", "requires_paid_access", "owner_role")


def _filter(name: str) -> ColumnElement[bool]:
    if name == "owner_id":
        return COLUMNS.owner_id == bindparam(name, type_=UUID(as_uuid=True))  # type: ignore[no-any-return]
    if name in ("is_public", "requires_paid_access"):
        return COLUMNS[name] == bindparam(name, type_=Boolean)  # type: ignore[no-any-return]
    # owner_role: documents whose owner holds the role.
    holders = (
        select(UserRole.user_id)
        .join(Role, Role.id == UserRole.role_id)
        .where(Role.name == bindparam(name, type_=String))
    )
    return COLUMNS.owner_id.in_(holders)  # type: ignore[no-any-return]


def _after(sort: ColumnElement[Any], descending: bool) -> ColumnElement[bool]:
    """Strictly after the previous page's last (sort value, id), in the page order."""
    keys = tuple_(sort, COLUMNS.id)
    bound = tuple_(
        bindparam(AFTER_VALUE, type_=sort.type), bindparam(AFTER_ID, type_=COLUMNS.id.type)
    )
    return keys < bound if descending else keys > bound


@lru_cache(maxsize=1024)
def list_page(
    visible: ColumnElement[bool], order_by: str, filters: frozenset[str], after: bool
) -> DocumentQuery:
    column, descending = ORDER_BY[order_by]
    sort = COLUMNS[column]
    stmt = select(*READ_COLUMNS).where(visible, *(_filter(f) for f in sorted(filters)))
    if after:
        stmt = stmt.where(_after(sort, descending))
    order = (sort.desc(), COLUMNS.id.desc()) if descending else (sort.asc(), COLUMNS.id.asc())
    return DocumentQuery(stmt.order_by(*order).limit(bindparam(LIMIT, type_=Integer)))


@lru_cache(maxsize=1024)
def list_count(visible: ColumnElement[bool], filters: frozenset[str]) -> DocumentQuery:
    where = (visible, *(_filter(f) for f in sorted(filters)))
    return DocumentQuery(select(func.count()).select_from(DOCUMENTS).where(*where))


@lru_cache(maxsize=512)
def search_page(visible: ColumnElement[bool], after: bool) -> DocumentQuery:
    """Ranked by ts_rank (descending), ties by id (descending), over the GIN-indexed vector."""
    tsquery = func.websearch_to_tsquery(
        literal_column("'simple'::regconfig"), bindparam(QUERY, type_=Text)
    )
    rank = func.ts_rank(COLUMNS.search, tsquery, type_=REAL).label("rank")
    stmt = select(*READ_COLUMNS, rank).where(COLUMNS.search.bool_op("@@")(tsquery), visible)
    if after:
        stmt = stmt.where(_after(rank, descending=True))
    order = (rank.desc(), COLUMNS.id.desc())
    return DocumentQuery(stmt.order_by(*order).limit(bindparam(LIMIT, type_=Integer)))
