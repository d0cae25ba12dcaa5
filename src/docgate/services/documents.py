"""docgate.v1.DocumentService: validate every field, then join the RPC's unit of work: reads
in autocommit (`read()`), writes in one transaction (`transaction()`). The session carries the
caller; the repository reads it from there."""

from __future__ import annotations

from typing import Any

import grpc.aio
from google.protobuf import empty_pb2

from docgate import policy
from docgate import validation as check
from docgate.config import Settings
from docgate.db.uow import UnitOfWork
from docgate.principal import require_principal
from docgate.repositories.document_statements import DEFAULT_ORDER_BY, ORDER_BY
from docgate.repositories.documents import DocumentRepository, ListQuery, NewDocument
from docgate.repositories.projects import ProjectRepository
from docgate.v1 import documents_pb2, documents_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
Document = documents_pb2.Document
UPDATABLE_FIELDS = ("title", "content", "is_public", "requires_paid_access", "project_id")


class DocumentService(documents_pb2_grpc.DocumentServiceServicer):
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self._uow = uow
        self._max_content_bytes = settings.max_content_bytes
        self._max_response_bytes = settings.max_response_bytes

    async def CreateDocument(
        self, request: documents_pb2.CreateDocumentRequest, context: Context
    ) -> Document:
        doc = request.document
        new = NewDocument(
            title=check.title(doc.title, "document.title"),
            content=check.content(doc.content, self._max_content_bytes, "document.content"),
            is_public=doc.is_public,
            requires_paid_access=doc.requires_paid_access,
            request_id=check.optional_id(request.request_id, "request_id"),
            project_id=check.optional_id(doc.project_id, "document.project_id"),
            request_hash=check.request_digest(request) if request.request_id else None,
        )
        async with self._uow.transaction() as session:
            documents = DocumentRepository(session)
            # A retry returns the first document before any precondition is checked again:
            # its project may have been archived since.
            if new.request_id is not None and (
                first := await documents.created_with(new.request_id, new.request_hash)
            ):
                return first
            if new.project_id is not None:
                await ProjectRepository(session).require_attachable(new.project_id)
            return await documents.create(new)

    async def GetDocument(
        self, request: documents_pb2.GetDocumentRequest, context: Context
    ) -> Document:
        doc_id = check.parse_id(request.id)
        async with self._uow.read() as session:
            repository = DocumentRepository(session)
            document = await repository.get(doc_id, show_deleted=request.show_deleted)
        if request.show_deleted:  # an admin's bypass (anyone else was refused)
            await self._uow.audit_read(f"documents/{doc_id}")
        return document

    async def BatchGetDocuments(
        self, request: documents_pb2.BatchGetDocumentsRequest, context: Context
    ) -> documents_pb2.BatchGetDocumentsResponse:
        ids = check.batch_ids(request.ids)
        async with self._uow.read() as session:
            documents = await DocumentRepository(session).batch_get(ids, self._max_response_bytes)
        return documents_pb2.BatchGetDocumentsResponse(documents=documents)

    async def ListDocuments(
        self, request: documents_pb2.ListDocumentsRequest, context: Context
    ) -> documents_pb2.ListDocumentsResponse:
        query = ListQuery(
            page_size=check.page_size(request.page_size),
            page_token=request.page_token,
            order_by=check.order_by(request.order_by, ORDER_BY, DEFAULT_ORDER_BY),
            owner_id=check.optional_id(request.owner_id, "owner_id"),
            project_id=check.optional_id(request.project_id, "project_id"),
            is_public=request.is_public if request.HasField("is_public") else None,
            requires_paid_access=(
                request.requires_paid_access if request.HasField("requires_paid_access") else None
            ),
            owner_role=self._owner_role(request.owner_role),
            show_deleted=request.show_deleted,
            include_total_size=request.include_total_size,
        )
        async with self._uow.read() as session:
            page = await DocumentRepository(session).list(query, self._max_response_bytes)
        if query.show_deleted:  # an admin's bypass (anyone else was refused)
            await self._uow.audit_read("documents")
        return page

    @staticmethod
    def _owner_role(value: str) -> str | None:
        if not value:
            return None
        role = check.role_name(value, "owner_role")
        policy.check_owner_role_filter(require_principal(), role)
        return role

    async def SearchDocuments(
        self, request: documents_pb2.SearchDocumentsRequest, context: Context
    ) -> documents_pb2.SearchDocumentsResponse:
        text = check.search_query(request.query)
        page_size = check.page_size(request.page_size)
        async with self._uow.read() as session:
            repository = DocumentRepository(session)
            return await repository.search(
                text, page_size, request.page_token, self._max_response_bytes
            )

    async def UpdateDocument(
        self, request: documents_pb2.UpdateDocumentRequest, context: Context
    ) -> Document:
        doc_id = check.parse_id(request.document.id, "document.id")
        fields = check.update_mask(request.update_mask.paths, UPDATABLE_FIELDS, wildcard=True)
        version = check.update_etag(request.etag, request.document.etag, "document")
        doc = request.document
        changes: dict[str, Any] = {}
        if "title" in fields:
            changes["title"] = check.title(doc.title, "document.title")
        if "content" in fields:
            changes["content"] = check.content(
                doc.content, self._max_content_bytes, "document.content"
            )
        if "is_public" in fields:
            changes["is_public"] = doc.is_public
        if "requires_paid_access" in fields:
            changes["requires_paid_access"] = doc.requires_paid_access
        if "project_id" in fields:  # empty: out of its project
            changes["project_id"] = check.optional_id(doc.project_id, "document.project_id")
        async with self._uow.transaction() as session:
            if changes.get("project_id") is not None:
                await ProjectRepository(session).require_attachable(changes["project_id"])
            return await DocumentRepository(session).update(doc_id, changes, version)

    async def DeleteDocument(
        self, request: documents_pb2.DeleteDocumentRequest, context: Context
    ) -> Document:
        doc_id = check.parse_id(request.id)
        version = check.parse_etag(request.etag)
        async with self._uow.transaction() as session:
            return await DocumentRepository(session).delete(doc_id, version)

    async def UndeleteDocument(
        self, request: documents_pb2.UndeleteDocumentRequest, context: Context
    ) -> Document:
        doc_id = check.parse_id(request.id)
        async with self._uow.transaction() as session:
            return await DocumentRepository(session).undelete(doc_id)

    async def PurgeDocument(
        self, request: documents_pb2.PurgeDocumentRequest, context: Context
    ) -> empty_pb2.Empty:
        doc_id = check.parse_id(request.id)
        async with self._uow.transaction() as session:
            await DocumentRepository(session).purge(doc_id)
        return empty_pb2.Empty()
