"""ListDocuments and SearchDocuments: keyset pages of visible documents.

Every page is one Core statement (documents_statements) whose WHERE is the caller's policy
predicate, the filters and "after the token's sort key"; it fetches page_size + 1 rows to know
whether a next page exists.
Each order is (column, id) in one direction, which is exactly an index of the table, so a page
costs the same at any depth and any table size.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination
from docgate.auth.principal import Principal
from docgate.documents_validation import ORDER_BY
from docgate.errors import InvalidArgument
from docgate.repositories import documents_statements as statements
from docgate.repositories.documents_sql import visible_to
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


def _after(token: str, fingerprint: str, keys: list[str]) -> dict[str, Any]:
    """The keyset bound parameters from the token ({} on the first page)."""
    if not token:
        return {}
    values = pagination.decode(token, fingerprint)
    if len(values) != len(keys):
        raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN")
    sort_value, doc_id = (_sort_value(k, v) for k, v in zip(keys, values, strict=True))
    return {statements.AFTER_VALUE: sort_value, statements.AFTER_ID: doc_id}


def _filters(query: ListQuery) -> dict[str, Any]:
    """The filters the request sets, by bind parameter name."""
    values = {name: getattr(query, name) for name in statements.FILTERS}
    return {name: value for name, value in values.items() if value is not None}


def _page(
    rows: Sequence[Any], size: int, fingerprint: str, keys: list[str]
) -> tuple[list[documents_pb2.Document], str]:
    documents = [mapping.document(row) for row in rows[:size]]
    if len(rows) <= size:
        return documents, ""
    last = rows[size - 1]
    return documents, pagination.encode(fingerprint, [_token_value(last[k]) for k in keys])


async def list_visible(
    session: AsyncSession, principal: Principal, query: ListQuery
) -> documents_pb2.ListDocumentsResponse:
    column, _ = ORDER_BY[query.order_by]
    fingerprint = query.fingerprint()
    after = _after(query.page_token, fingerprint, [column, "id"])
    visible = visible_to(principal, show_deleted=query.show_deleted)
    filters = _filters(query)
    page = statements.list_page(visible, query.order_by, frozenset(filters), bool(after))
    limit = {statements.LIMIT: query.page_size + 1}
    rows = await page.fetch(session, principal, **filters, **after, **limit)
    documents, next_token = _page(rows, query.page_size, fingerprint, [column, "id"])
    response = documents_pb2.ListDocumentsResponse(documents=documents, next_page_token=next_token)
    if query.include_total_size:
        count = statements.list_count(visible, frozenset(filters))
        response.total_size = (await count.fetch(session, principal, **filters))[0][0]
    return response


async def search_visible(
    session: AsyncSession, principal: Principal, text: str, page_size: int, page_token: str
) -> documents_pb2.SearchDocumentsResponse:
    fingerprint = pagination.fingerprint("search", text)
    after = _after(page_token, fingerprint, ["rank", "id"])
    search = statements.search_page(visible_to(principal), bool(after))
    values = {statements.QUERY: text, statements.LIMIT: page_size + 1}
    rows = await search.fetch(session, principal, **after, **values)
    documents, next_token = _page(rows, page_size, fingerprint, ["rank", "id"])
    return documents_pb2.SearchDocumentsResponse(documents=documents, next_page_token=next_token)
