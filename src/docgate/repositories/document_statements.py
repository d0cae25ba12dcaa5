"""Every SQL statement the document repository reads with, built once per shape and cached.

Hot reads are Core statements on the documents table, compiled once and run on the driver (no
ORM identity map, no listener, records mapped straight to protobuf). Their WHERE clause is the
caller's visibility predicate from docgate.policy — the same rule the ORM listener applies to
ORM statements — with the caller's id left as a bind parameter. A shape is (predicate, order,
which filters are present, first page or not); every value — the caller's id, filter values,
the keyset bound, the limit, the search text — is a named bind parameter supplied at
execution. Building and compiling a statement costs more than a keyset page query at any table
size, so the hot path only binds values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

import asyncpg
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    Text,
    any_,
    bindparam,
    case,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, REAL, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import policy
from docgate.db.models import Document, Role, UserRole
from docgate.db.prepared import PreparedQuery
from docgate.principal import Principal

DOCUMENTS: Final[Table] = Document.__table__  # type: ignore[assignment]
COLUMNS: Final[Any] = DOCUMENTS.c
# Everything mapping.document needs; never the deferred `search` vector.
READ_COLUMNS: Final = (
    COLUMNS.id,
    COLUMNS.title,
    COLUMNS.content,
    COLUMNS.owner_id,
    COLUMNS.project_id,
    COLUMNS.is_public,
    COLUMNS.requires_paid_access,
    COLUMNS.create_time,
    COLUMNS.update_time,
    COLUMNS.delete_time,
    COLUMNS.version,
)
# The same columns as ORM attributes, for RETURNING from ORM (listener-filtered) writes.
ORM_READ_COLUMNS: Final = tuple(getattr(Document, column.key) for column in READ_COLUMNS)

# order_by → (column, descending). The id column breaks ties in the same direction, so each
# order is one backward or forward scan of a (column, id) index.
ORDER_BY: Final[Mapping[str, tuple[str, bool]]] = {
    "create_time desc": ("create_time", True),
    "create_time": ("create_time", False),
    "create_time asc": ("create_time", False),
    "update_time desc": ("update_time", True),
    "title": ("title", False),
    "title asc": ("title", False),
}
DEFAULT_ORDER_BY: Final = "create_time desc"

# Bind parameter names (the keys of the execution parameters).
CALLER_ID: Final = bindparam("caller_id", type_=UUID(as_uuid=True))
LIMIT: Final = "limit"
AFTER_VALUE: Final = "after_value"
AFTER_ID: Final = "after_id"
QUERY: Final = "query"
BUDGET: Final = "budget"
# A bound on what a Document holds besides title and content (ids, flags, etag, timestamps,
# the tags and lengths of every field): about 200 bytes serialized.
ROW_OVERHEAD: Final = 256
FILTERS: Final = ("owner_id", "project_id", "is_public", "requires_paid_access", "owner_role")


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


@lru_cache(maxsize=64)
def get_one(visible: ColumnElement[bool]) -> DocumentQuery:
    return DocumentQuery(select(*READ_COLUMNS).where(COLUMNS.id == bindparam("doc_id"), visible))


@lru_cache(maxsize=64)
def get_many(visible: ColumnElement[bool]) -> DocumentQuery:
    ids = bindparam("doc_ids", type_=ARRAY(UUID(as_uuid=True)))
    return DocumentQuery(select(*READ_COLUMNS).where(COLUMNS.id == any_(ids), visible))


@lru_cache(maxsize=64)
def sizes_of_many(visible: ColumnElement[bool]) -> DocumentQuery:
    """id and the stored byte lengths of title and content, without reading the content:
    octet_length of a stored (toasted) text is read from its header."""
    ids = bindparam("doc_ids", type_=ARRAY(UUID(as_uuid=True)))
    lengths = (
        COLUMNS.id,
        func.octet_length(COLUMNS.title).label("title_bytes"),
        func.octet_length(COLUMNS.content).label("content_bytes"),
    )
    return DocumentQuery(select(*lengths).where(COLUMNS.id == any_(ids), visible))


def _filter(name: str) -> ColumnElement[bool]:
    if name in ("owner_id", "project_id"):
        return COLUMNS[name] == bindparam(name, type_=UUID(as_uuid=True))  # type: ignore[no-any-return]
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


def _page_columns(order: tuple[Any, ...]) -> tuple[Any, ...]:
    """READ_COLUMNS, with the content only of rows whose running byte total (title + content
    + overhead, in page order) is within the BUDGET parameter, and that total: a page never
    reads past its response budget, at one window aggregate over rows the scan reads anyway
    (octet_length reads a stored text's header, not its body)."""
    overhead = literal_column(str(ROW_OVERHEAD), type_=Integer)
    sizes = func.octet_length(COLUMNS.title) + func.octet_length(COLUMNS.content) + overhead
    running = func.sum(sizes).over(order_by=order, rows=(None, 0))
    within = running <= bindparam(BUDGET, type_=BigInteger)
    content = case((within, COLUMNS.content), else_=literal_column("''")).label("content")
    others = tuple(column for column in READ_COLUMNS if column is not COLUMNS.content)
    return (*others, content, running.label("running_bytes"))


@lru_cache(maxsize=1024)
def list_page(
    visible: ColumnElement[bool], order_by: str, filters: frozenset[str], after: bool
) -> DocumentQuery:
    column, descending = ORDER_BY[order_by]
    sort = COLUMNS[column]
    order = (sort.desc(), COLUMNS.id.desc()) if descending else (sort.asc(), COLUMNS.id.asc())
    stmt = select(*_page_columns(order)).where(visible, *(_filter(f) for f in sorted(filters)))
    if after:
        stmt = stmt.where(_after(sort, descending))
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
    order = (rank.desc(), COLUMNS.id.desc())
    columns = (*_page_columns((rank.element.desc(), COLUMNS.id.desc())), rank)
    stmt = select(*columns).where(COLUMNS.search.bool_op("@@")(tsquery), visible)
    if after:
        stmt = stmt.where(_after(rank, descending=True))
    return DocumentQuery(stmt.order_by(*order).limit(bindparam(LIMIT, type_=Integer)))
