"""ListDocuments and SearchDocuments: keyset pages of visible documents.

Every page is one Core statement whose WHERE is the caller's policy predicate, the filters and
"after the token's sort key"; it fetches page_size + 1 rows to know whether a next page exists.
Each order is (column, id) in one direction, which is exactly an index of the table, so a page
costs the same at any depth and any table size.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, literal, literal_column, select, tuple_
from sqlalchemy.dialects.postgresql import REAL
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination
from docgate.auth.principal import Principal
from docgate.db.models import Role, UserRole
from docgate.documents_validation import ORDER_BY
from docgate.errors import InvalidArgument
from docgate.repositories.documents_sql import (
    COLUMNS,
    READ_COLUMNS,
    caller_params,
    read_connection,
    visible_to,
)
from docgate.v1 import documents_pb2

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class ListQuery:
    page_size: int
    page_token: str
    order_by: str  # a key of documents_validation.ORDER_BY
    owner_id: uuid.UUID | None = None
    is_public: bool | None = None
    requires_paid_access: bool | None = None
    owner_role: str | None = None
    show_deleted: bool = False
    include_total_size: bool = False

    def fingerprint(self) -> str:
        """What a page token is bound to: everything that defines the result set."""
        return pagination.fingerprint(
            "list", self.order_by, self.owner_id, self.is_public,
            self.requires_paid_access, self.owner_role, self.show_deleted,
        )  # fmt: skip


def _token_value(value: Any) -> pagination.JsonScalar:
    if isinstance(value, datetime):
        return (value - _EPOCH) // _MICROSECOND
    if isinstance(value, uuid.UUID):
        return str(value)
    return value  # type: ignore[no-any-return]


def _sort_value(column: str, value: Any) -> Any:
    """A sort-key value read back from a token, typed for its column."""
    if column in ("create_time", "update_time") and type(value) is int:
        return _EPOCH + value * _MICROSECOND
    if column == "title" and isinstance(value, str):
        return value
    if column == "rank" and type(value) in (int, float):
        return float(value)
    if column == "id" and isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN")


def _after(
    token: str, fingerprint: str, keys: list[tuple[str, ColumnElement[Any]]], descending: bool
) -> ColumnElement[bool] | None:
    """Rows strictly after the token's sort key in the page order (None: first page)."""
    if not token:
        return None
    values = pagination.decode(token, fingerprint)
    if len(values) != len(keys):
        raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN")
    bounds = [
        literal(_sort_value(name, value), expr.type)
        for (name, expr), value in zip(keys, values, strict=True)
    ]
    columns = tuple_(*(expr for _, expr in keys))
    return columns < tuple_(*bounds) if descending else columns > tuple_(*bounds)


def _filters(query: ListQuery) -> list[ColumnElement[bool]]:
    filters = []
    if query.owner_id is not None:
        filters.append(COLUMNS.owner_id == query.owner_id)
    if query.is_public is not None:
        filters.append(COLUMNS.is_public.is_(query.is_public))
    if query.requires_paid_access is not None:
        filters.append(COLUMNS.requires_paid_access.is_(query.requires_paid_access))
    if query.owner_role is not None:
        holders = (
            select(UserRole.user_id)
            .join(Role, Role.id == UserRole.role_id)
            .where(Role.name == query.owner_role)
        )
        filters.append(COLUMNS.owner_id.in_(holders))
    return filters


def _page(
    rows: Sequence[Any], size: int, fingerprint: str, keys: list[str]
) -> tuple[list[documents_pb2.Document], str]:
    documents = [mapping.document(row) for row in rows[:size]]
    if len(rows) <= size:
        return documents, ""
    last = rows[size - 1]
    return documents, pagination.encode(fingerprint, [_token_value(getattr(last, k)) for k in keys])


async def list_visible(
    session: AsyncSession, principal: Principal, query: ListQuery
) -> documents_pb2.ListDocumentsResponse:
    column, descending = ORDER_BY[query.order_by]
    keys = [(column, COLUMNS[column]), ("id", COLUMNS.id)]
    fingerprint = query.fingerprint()
    after = _after(query.page_token, fingerprint, keys, descending)
    where = [visible_to(principal, show_deleted=query.show_deleted), *_filters(query)]
    order = [expr.desc() if descending else expr.asc() for _, expr in keys]
    stmt = select(*READ_COLUMNS).where(*where).order_by(*order).limit(query.page_size + 1)
    if after is not None:
        stmt = stmt.where(after)
    conn = await read_connection(session)
    params = caller_params(principal)
    rows = list((await conn.execute(stmt, params)).all())
    documents, next_token = _page(rows, query.page_size, fingerprint, [column, "id"])
    response = documents_pb2.ListDocumentsResponse(documents=documents, next_page_token=next_token)
    if query.include_total_size:
        count = select(func.count()).select_from(COLUMNS.id.table).where(*where)
        total = await conn.scalar(count, params)
        response.total_size = int(total or 0)
    return response


async def search_visible(
    session: AsyncSession, principal: Principal, text: str, page_size: int, page_token: str
) -> documents_pb2.SearchDocumentsResponse:
    """Ranked by ts_rank (descending), ties by id (descending), over the GIN-indexed vector."""
    tsquery = func.websearch_to_tsquery(literal_column("'simple'::regconfig"), text)
    rank = func.ts_rank(COLUMNS.search, tsquery, type_=REAL).label("rank")
    keys: list[tuple[str, ColumnElement[Any]]] = [("rank", rank), ("id", COLUMNS.id)]
    fingerprint = pagination.fingerprint("search", text)
    after = _after(page_token, fingerprint, keys, descending=True)
    stmt = (
        select(*READ_COLUMNS, rank)
        .where(COLUMNS.search.bool_op("@@")(tsquery), visible_to(principal))
        .order_by(rank.desc(), COLUMNS.id.desc())
        .limit(page_size + 1)
    )
    if after is not None:
        stmt = stmt.where(after)
    conn = await read_connection(session)
    rows = list((await conn.execute(stmt, caller_params(principal))).all())
    documents, next_token = _page(rows, page_size, fingerprint, ["rank", "id"])
    return documents_pb2.SearchDocumentsResponse(documents=documents, next_page_token=next_token)
