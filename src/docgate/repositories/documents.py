"""Documents: create, read and change them under the caller's policy.

Reads are Core statements with the policy predicate (see documents_sql). Writes first lock the
row through an ORM select, which the do_orm_execute listener filters with the same policy, so a
hidden document is NOT_FOUND before anything is written and a concurrent writer waits for the
lock and then sees the new version (no lost update).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Row, any_, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, policy
from docgate.auth.principal import Principal
from docgate.db.filtering import SHOW_DELETED
from docgate.db.models import Document
from docgate.errors import Aborted, AlreadyExists, PermissionDenied
from docgate.repositories.documents_sql import (
    COLUMNS,
    DOCUMENTS,
    ORM_READ_COLUMNS,
    READ_COLUMNS,
    DocumentQuery,
    document_not_found,
    visible_to,
)
from docgate.v1 import documents_pb2

_MAY_NOT_MODIFY = "only the owner or an admin may change this document"


# Built once per predicate (see documents_sql.visible_to): the hot reads pay no statement
# construction, only parameter binding.
@lru_cache(maxsize=64)
def _get_query(visible: ColumnElement[bool]) -> DocumentQuery:
    return DocumentQuery(select(*READ_COLUMNS).where(COLUMNS.id == bindparam("doc_id"), visible))


@lru_cache(maxsize=64)
def _batch_get_query(visible: ColumnElement[bool]) -> DocumentQuery:
    ids = bindparam("doc_ids", type_=ARRAY(UUID(as_uuid=True)))
    return DocumentQuery(select(*READ_COLUMNS).where(COLUMNS.id == any_(ids), visible))


@dataclass(frozen=True)
class NewDocument:
    title: str
    content: str
    is_public: bool
    requires_paid_access: bool
    request_id: uuid.UUID | None


class DocumentRepository:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self._session = session
        self._principal = principal

    async def create(self, new: NewDocument) -> documents_pb2.Document:
        """Insert as the caller; with a request_id, a retry (also a racing one) returns the
        original row through the owner's unique (owner_id, request_id) constraint."""
        owner_id = self._principal.user_id
        stmt = pg_insert(DOCUMENTS).values(
            owner_id=owner_id,
            title=new.title,
            content=new.content,
            is_public=new.is_public,
            requires_paid_access=new.requires_paid_access,
            request_id=new.request_id,
        )
        if new.request_id is not None:
            stmt = stmt.on_conflict_do_nothing(constraint="uq_documents_owner_id_request_id")
        conn = await self._session.connection()
        row = (await conn.execute(stmt.returning(*READ_COLUMNS))).first()
        if row is None:  # the conflicting row is committed and visible to this statement
            original = select(*READ_COLUMNS).where(
                COLUMNS.owner_id == owner_id, COLUMNS.request_id == new.request_id
            )
            row = (await conn.execute(original)).one()
        return mapping.document(row._mapping)

    async def get(self, doc_id: uuid.UUID, *, show_deleted: bool) -> documents_pb2.Document:
        query = _get_query(visible_to(self._principal, show_deleted=show_deleted))
        rows = await query.fetch(self._session, self._principal, doc_id=doc_id)
        if not rows:
            raise document_not_found()
        return mapping.document(rows[0])

    async def batch_get(self, ids: Sequence[uuid.UUID]) -> list[documents_pb2.Document]:
        """In request order, one entry per requested id; all visible or NOT_FOUND."""
        query = _batch_get_query(visible_to(self._principal))
        rows = await query.fetch(self._session, self._principal, doc_ids=list(set(ids)))
        found = {row["id"]: row for row in rows}
        if any(doc_id not in found for doc_id in ids):
            raise document_not_found()
        return [mapping.document(found[doc_id]) for doc_id in ids]

    async def update(
        self, doc_id: uuid.UUID, changes: Mapping[str, Any], version: int | None
    ) -> documents_pb2.Document:
        await self._lock_for_change(doc_id, version)
        return await self._write(doc_id, {**changes, "update_time": func.now()})

    async def delete(self, doc_id: uuid.UUID, version: int | None) -> documents_pb2.Document:
        await self._lock_for_change(doc_id, version)
        return await self._write(doc_id, {"is_deleted": True, "delete_time": func.now()})

    async def undelete(self, doc_id: uuid.UUID) -> documents_pb2.Document:
        policy.require_admin(self._principal)
        locked = await self._lock(doc_id, show_deleted=True)
        if not locked.is_deleted:
            raise AlreadyExists("the document is not deleted", reason="DOCUMENT_NOT_DELETED")
        changes = {"is_deleted": False, "delete_time": None}
        return await self._write(doc_id, changes, show_deleted=True)

    async def purge(self, doc_id: uuid.UUID) -> None:
        policy.require_admin(self._principal)
        stmt = (
            delete(Document)
            .where(Document.id == doc_id)
            .returning(Document.id)
            .execution_options(synchronize_session=False, **{SHOW_DELETED: True})
        )
        if (await self._session.execute(stmt)).first() is None:
            raise document_not_found()

    async def _lock(
        self, doc_id: uuid.UUID, *, show_deleted: bool = False
    ) -> Row[uuid.UUID, int, bool]:
        """The row's owner, version and state, locked; no explicit filter: the listener adds
        the caller's policy, so a hidden row is simply not found."""
        stmt = (
            select(Document.owner_id, Document.version, Document.is_deleted)
            .where(Document.id == doc_id)
            .with_for_update()
            .execution_options(**{SHOW_DELETED: show_deleted})
        )
        row = (await self._session.execute(stmt)).first()
        if row is None:
            raise document_not_found()
        return row

    async def _lock_for_change(self, doc_id: uuid.UUID, version: int | None) -> None:
        locked = await self._lock(doc_id)
        if not policy.may_modify_document(self._principal, locked.owner_id):
            raise PermissionDenied(_MAY_NOT_MODIFY, reason="NOT_DOCUMENT_OWNER")
        if version is not None and version != locked.version:
            raise Aborted(
                "the document changed since that etag was read; read it again",
                reason="ETAG_MISMATCH",
            )

    async def _write(
        self, doc_id: uuid.UUID, changes: Mapping[str, Any], *, show_deleted: bool = False
    ) -> documents_pb2.Document:
        stmt = (
            update(Document)
            .where(Document.id == doc_id)
            .values(**changes, version=Document.version + 1)
            .returning(*ORM_READ_COLUMNS)
            .execution_options(synchronize_session=False, **{SHOW_DELETED: show_deleted})
        )
        return mapping.document((await self._session.execute(stmt)).one()._mapping)
