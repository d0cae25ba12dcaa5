"""Documents: the operations of the DocumentService, under the caller's policy.

Reads are prepared Core statements with the policy predicate (docgate.repositories.
document_statements). Writes first lock the row through an ORM select, which the do_orm_execute
listener filters with the same policy, so a hidden document is NOT_FOUND before anything is
written and a concurrent writer waits for the lock and then sees the new version (no lost
update). Pages are keyset pages (docgate.pagination): each order is (column, id) in one
direction, which is exactly an index of the table, so a page costs the same at any depth.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination, policy
from docgate.db import audit
from docgate.db.filtering import SHOW_DELETED
from docgate.db.models import Document
from docgate.db.prepared import PreparedQuery, connection_of
from docgate.db.uow import page_tokens, principal_of
from docgate.errors import (
    Aborted,
    AlreadyExists,
    InvalidArgument,
    PermissionDenied,
    document_not_found,
    request_id_reused,
    response_too_large,
)
from docgate.pagination import KeyKind, Keyset
from docgate.repositories import document_statements as sql
from docgate.repositories.document_statements import COLUMNS, DOCUMENTS, READ_COLUMNS
from docgate.v1 import documents_pb2

_MAY_NOT_MODIFY = "only the owner or an admin may change this document"
# The keyset of each order: (sort column, id).
_KEYSETS: Final = {
    "create_time": Keyset((KeyKind.TIMESTAMP, KeyKind.UUID)),
    "update_time": Keyset((KeyKind.TIMESTAMP, KeyKind.UUID)),
    "title": Keyset((KeyKind.TEXT, KeyKind.UUID)),
}
_SEARCH_KEYSET: Final = Keyset((KeyKind.TIMESTAMP, KeyKind.UUID))
_INT32_MAX: Final = 2**31 - 1


@dataclass(frozen=True)
class NewDocument:
    title: str
    content: str
    is_public: bool
    requires_paid_access: bool
    request_id: uuid.UUID | None
    project_id: uuid.UUID | None = None
    request_hash: bytes | None = None  # validation.request_digest of the create request


@dataclass(frozen=True)
class ListQuery:
    page_size: int
    page_token: str
    order_by: str  # a key of document_statements.ORDER_BY
    owner_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    is_public: bool | None = None
    requires_paid_access: bool | None = None
    owner_role: str | None = None
    show_deleted: bool = False
    include_total_size: bool = False

    def fingerprint(self) -> str:
        """What a page token is bound to: everything that defines the result set."""
        # project_id only when set, so tokens issued before the filter existed stay valid.
        project = () if self.project_id is None else (("project", self.project_id),)
        return pagination.fingerprint(
            "list", self.order_by, self.owner_id, self.is_public,
            self.requires_paid_access, self.owner_role, self.show_deleted, *project,
        )  # fmt: skip

    def filters(self) -> dict[str, Any]:
        """The filters the request sets, by bind parameter name."""
        values = {name: getattr(self, name) for name in sql.FILTERS}
        return {name: value for name, value in values.items() if value is not None}


def _check_replay(original: Any, request_hash: bytes | None) -> None:
    """A retry is answered with the document it created — only if it is the same request, and
    only with what the caller may see now (a deleted document is for admins who ask for it)."""
    if original.request_hash is not None and request_hash not in (None, original.request_hash):
        raise request_id_reused()
    if original.is_deleted:
        raise AlreadyExists(
            "the document this request_id created has since been deleted; use a new request_id",
            reason="REQUEST_ID_REUSED",
        )


def _after(start: tuple[Any, ...] | None) -> dict[str, Any]:
    """The keyset bound parameters ({} on the first page)."""
    if start is None:
        return {}
    sort_value, doc_id = start
    return {sql.AFTER_VALUE: sort_value, sql.AFTER_ID: doc_id}


def _within(rows: Sequence[Mapping[str, Any]], page_size: int, max_bytes: int, page: Any) -> int:
    """Fill ``page`` (the response's repeated documents) and return the page's size:
    page_size, or fewer when the next one would take the answer past ``max_bytes`` (AIP-158
    allows a short page; its token continues after the last one kept). A first document that
    does not fit alone is RESOURCE_EXHAUSTED: returning it would break the limit, skipping it
    would lose it; GetDocument reads it. The statement reads content only within the budget
    (running_bytes, document_statements._page_columns); the serialized sizes then decide
    exactly. The caller cuts ``page`` to the size it keeps."""
    for row in rows[:page_size]:
        if row["running_bytes"] <= max_bytes:
            mapping.document_into(page, row)
    size = pagination.fitting((doc.ByteSize() for doc in page), max_bytes)
    if size == 0 and rows:
        raise response_too_large("the page's first document", rows[0]["running_bytes"], max_bytes)
    return size


# The non-content fields whose old values an update's audit entry shows.
_AUDITED: Final = (
    Document.title,
    Document.is_public,
    Document.requires_paid_access,
    Document.project_id,
)


def _note_created(session: AsyncSession, doc_id: uuid.UUID, new: NewDocument) -> None:
    changes = audit.fields(
        title=(None, new.title),
        content=(None, None),
        is_public=(None, new.is_public),
        requires_paid_access=(None, new.requires_paid_access),
        project_id=(None, new.project_id),
    )
    audit.note(session, f"documents/{doc_id}", changes)


def _insert(*, once: bool) -> PreparedQuery:
    """CreateDocument's INSERT … RETURNING, built and compiled once (``once``: with a
    request_id, whose retry — also a racing one — meets the owner's unique (owner_id,
    request_id) constraint and inserts nothing)."""
    stmt = pg_insert(DOCUMENTS).values({name: bindparam(name) for name in _CREATED})
    if once:
        stmt = stmt.on_conflict_do_nothing(constraint="uq_documents_owner_id_request_id")
    return PreparedQuery(stmt.returning(*READ_COLUMNS))


_CREATED: Final = (
    "owner_id", "title", "content", "is_public", "requires_paid_access", "request_id",
    "project_id", "request_hash",
)  # fmt: skip
_INSERT: Final = _insert(once=False)
_INSERT_ONCE: Final = _insert(once=True)


class DocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._principal = principal_of(session)

    async def create(self, new: NewDocument) -> documents_pb2.Document:
        """Insert as the caller; with a request_id, a retry (also a racing one) returns the
        original row through the owner's unique (owner_id, request_id) constraint."""
        insert = _INSERT if new.request_id is None else _INSERT_ONCE
        row = await insert.fetchrow(
            await connection_of(self._session),
            owner_id=self._principal.user_id,
            title=new.title,
            content=new.content,
            is_public=new.is_public,
            requires_paid_access=new.requires_paid_access,
            request_id=new.request_id,
            project_id=new.project_id,
            request_hash=new.request_hash,
        )
        if row is not None:
            _note_created(self._session, row["id"], new)
            return mapping.document(row)
        # A racing first call won: its row is committed and visible to this statement.
        assert new.request_id is not None
        first = await self.created_with(new.request_id, new.request_hash)
        assert first is not None
        return first

    async def created_with(
        self, request_id: uuid.UUID, request_hash: bytes | None
    ) -> documents_pb2.Document | None:
        """The caller's document created with ``request_id`` by this same request, whatever
        happened to it since (a retry returns the first result), or None; the id used for
        another request, or a document since deleted, is REQUEST_ID_REUSED."""
        conn = await self._session.connection()
        original = select(*READ_COLUMNS, COLUMNS.is_deleted, COLUMNS.request_hash).where(
            COLUMNS.owner_id == self._principal.user_id, COLUMNS.request_id == request_id
        )
        row = (await conn.execute(original)).first()
        if row is None:
            return None
        _check_replay(row, request_hash)
        audit.note(self._session, f"documents/{row.id}", audit.fields(replayed=(None, True)))
        return mapping.document(row._mapping)

    async def get(self, doc_id: uuid.UUID, *, show_deleted: bool) -> documents_pb2.Document:
        query = sql.get_one(sql.visible_to(self._principal, show_deleted=show_deleted))
        rows = await query.fetch(self._session, self._principal, doc_id=doc_id)
        if not rows:
            raise document_not_found()
        return mapping.document(rows[0])

    async def batch_get(
        self, ids: Sequence[uuid.UUID], max_bytes: int
    ) -> list[documents_pb2.Document]:
        """In request order, one entry per requested id; all visible or NOT_FOUND. The answer's
        size is decided from the stored lengths first (each duplicate counts: the answer repeats
        it), so one over ``max_bytes`` is RESOURCE_EXHAUSTED before any content is read; each
        distinct document is then read once."""
        visible, distinct = sql.visible_to(self._principal), list(dict.fromkeys(ids))
        sizes = await sql.sizes_of_many(visible).fetch(
            self._session, self._principal, doc_ids=distinct
        )
        size = {row["id"]: row["title_bytes"] + row["content_bytes"] for row in sizes}
        if any(doc_id not in size for doc_id in ids):
            raise document_not_found()
        needed = sum(size[doc_id] + sql.ROW_OVERHEAD for doc_id in ids)
        if needed > max_bytes:
            raise response_too_large("the answer", needed, max_bytes)
        rows = await sql.get_many(visible).fetch(self._session, self._principal, doc_ids=distinct)
        found = {row["id"]: mapping.document(row) for row in rows}
        if any(doc_id not in found for doc_id in ids):  # deleted between the two reads
            raise document_not_found()
        return [found[doc_id] for doc_id in ids]

    async def list(self, query: ListQuery, max_bytes: int) -> documents_pb2.ListDocumentsResponse:
        column, _ = sql.ORDER_BY[query.order_by]
        keyset, fingerprint = _KEYSETS[column], query.fingerprint()
        after = _after(keyset.start(page_tokens(self._session), query.page_token, fingerprint))
        arms = sql.visible_arms(self._principal, show_deleted=query.show_deleted)
        holders = await self._few_holders(query)
        shape, filters = sql.filter_shape(query.filters(), holders, self._principal.user_id)
        page = sql.list_page(arms, query.order_by, shape, bool(after))
        limit = {sql.LIMIT: keyset.limit(query.page_size), sql.BUDGET: max_bytes}
        rows = await page.fetch(self._session, self._principal, **filters, **after, **limit)
        response = documents_pb2.ListDocumentsResponse()
        size = _within(rows, query.page_size, max_bytes, response.documents)
        kept, response.next_page_token = keyset.page(
            page_tokens(self._session),
            rows,
            size,
            fingerprint,
            lambda row: (row[column], row["id"]),
        )
        del response.documents[len(kept) :]
        if query.include_total_size:
            response.total_size = await self._total_size(arms, shape, filters)
        return response

    async def _few_holders(self, query: ListQuery) -> Sequence[uuid.UUID] | None:
        """The owner_role's holders when there are at most FEW_HOLDERS of them, else None."""
        if query.owner_role is None:
            return None
        found = await sql.role_holders().fetch(
            self._session, self._principal, owner_role=query.owner_role, limit=sql.FEW_HOLDERS + 1
        )
        return [row["user_id"] for row in found] if len(found) <= sql.FEW_HOLDERS else None

    async def _total_size(self, arms: sql.Arms, shape: sql.Shape, filters: dict[str, Any]) -> int:
        """Exact up to TOTAL_EXACT_UP_TO (each arm's count stops one past it); above, the
        planner's estimate of the same filter, never below the exact range's end."""
        cap = sql.TOTAL_EXACT_UP_TO + 1
        count = sql.list_count(arms, shape)
        counted = (await count.fetch(self._session, self._principal, **filters, cap=cap))[0][0]
        if counted <= sql.TOTAL_EXACT_UP_TO:
            return int(counted)
        estimate = await sql.list_estimate(arms, shape).estimate(
            self._session, self._principal, **filters
        )
        return min(max(estimate, cap), _INT32_MAX)

    async def search(
        self, text: str, page_size: int, page_token: str, max_bytes: int
    ) -> documents_pb2.SearchDocumentsResponse:
        """Newest matches first (create_time, id descending): a keyset order, so a page costs
        about the same however many documents match (docgate.repositories.
        document_statements.search_window)."""
        fingerprint = pagination.fingerprint("search-newest", text)
        after = _after(_SEARCH_KEYSET.start(page_tokens(self._session), page_token, fingerprint))
        arms = sql.visible_arms(self._principal)
        limit = _SEARCH_KEYSET.limit(page_size)
        values = {sql.QUERY: text, sql.LIMIT: limit, sql.BUDGET: max_bytes}
        window = sql.search_window(arms, bool(after))
        rows = await window.fetch(
            self._session, self._principal, **after, **values, window=sql.SEARCH_WINDOW
        )
        if len(rows) < limit:
            matches = sql.search_matches(arms, bool(after))
            rows = await matches.fetch(self._session, self._principal, **after, **values)
        response = documents_pb2.SearchDocumentsResponse()
        size = _within(rows, page_size, max_bytes, response.documents)
        kept, response.next_page_token = _SEARCH_KEYSET.page(
            page_tokens(self._session),
            rows,
            size,
            fingerprint,
            lambda row: (row["create_time"], row["id"]),
        )
        del response.documents[len(kept) :]
        return response

    async def update(
        self, doc_id: uuid.UUID, changes: Mapping[str, Any], version: int | None
    ) -> documents_pb2.Document:
        old = await self._lock_for_change(doc_id, version)
        changed = {name: (getattr(old, name, None), new) for name, new in changes.items()}
        audit.note(self._session, f"documents/{doc_id}", audit.fields(**changed))
        return await self._write(doc_id, {**changes, "update_time": func.now()})

    async def delete(self, doc_id: uuid.UUID, version: int | None) -> documents_pb2.Document:
        await self._lock_for_change(doc_id, version)
        audit.note(self._session, f"documents/{doc_id}", audit.fields(is_deleted=(False, True)))
        changes = {"is_deleted": True, "delete_time": func.now(), "update_time": func.now()}
        return await self._write(doc_id, changes)

    async def undelete(self, doc_id: uuid.UUID) -> documents_pb2.Document:
        policy.require_admin(self._principal, "/docgate.v1.DocumentService/UndeleteDocument")
        locked = await self._lock(doc_id, show_deleted=True)
        if not locked.is_deleted:
            raise AlreadyExists("the document is not deleted", reason="DOCUMENT_NOT_DELETED")
        audit.note(self._session, f"documents/{doc_id}", audit.fields(is_deleted=(True, False)))
        changes = {"is_deleted": False, "delete_time": None, "update_time": func.now()}
        return await self._write(doc_id, changes, show_deleted=True)

    async def purge(self, doc_id: uuid.UUID) -> None:
        policy.require_admin(self._principal, "/docgate.v1.DocumentService/PurgeDocument")
        stmt = (
            delete(Document)
            .where(Document.id == doc_id)
            .returning(Document.id)
            .execution_options(synchronize_session=False, **{SHOW_DELETED: True})
        )
        if (await self._session.execute(stmt)).first() is None:
            raise document_not_found()
        audit.note(self._session, f"documents/{doc_id}")

    async def _lock(self, doc_id: uuid.UUID, *, show_deleted: bool = False) -> Any:
        """The row's owner, version and state (and the fields an audit entry shows the old
        values of), locked; no explicit filter: the listener adds the caller's policy, so a
        hidden row is simply not found."""
        stmt = (
            select(Document.owner_id, Document.version, Document.is_deleted, *_AUDITED)
            .where(Document.id == doc_id)
            .with_for_update()
            .execution_options(**{SHOW_DELETED: show_deleted})
        )
        row = (await self._session.execute(stmt)).first()
        if row is None:
            raise document_not_found()
        return row

    async def _lock_for_change(self, doc_id: uuid.UUID, version: int | None) -> Any:
        locked = await self._lock(doc_id)
        if not policy.may_modify_document(self._principal, locked.owner_id):
            raise PermissionDenied(_MAY_NOT_MODIFY, reason="NOT_DOCUMENT_OWNER")
        if version is not None and version > locked.version:
            # Versions only grow, so this etag cannot have come from docgate.
            raise InvalidArgument(
                "etag is not one this service issued", field="etag", reason="INVALID_ETAG"
            )
        if version is not None and version != locked.version:
            raise Aborted(
                "the document changed since that etag was read; read it again",
                reason="ETAG_MISMATCH",
            )
        return locked

    async def _write(
        self, doc_id: uuid.UUID, changes: Mapping[str, Any], *, show_deleted: bool = False
    ) -> documents_pb2.Document:
        stmt = (
            update(Document)
            .where(Document.id == doc_id)
            .values(**changes, version=Document.version + 1)
            .returning(*sql.ORM_READ_COLUMNS)
            .execution_options(synchronize_session=False, **{SHOW_DELETED: show_deleted})
        )
        return mapping.document((await self._session.execute(stmt)).one()._mapping)
