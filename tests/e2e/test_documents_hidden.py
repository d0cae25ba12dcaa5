"""Hidden is absent: a document the caller may not see answers exactly like a missing one, and
writes to it change nothing (checked in PostgreSQL directly)."""

from __future__ import annotations

import uuid

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb
from google.protobuf import field_mask_pb2

from docgate.bootstrap import App
from tests import support
from tests.conformance.support import Stub, answer, create, fails, raw_documents
from tests.support import make_user

# (owner, free user, {case: document id})
World = tuple[support.TestUser, support.TestUser, dict[str, str]]


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


@pytest.fixture(scope="module")
async def hidden_world(app: App, stub: Stub) -> World:
    """A free user, an owner, and ids that are missing, deleted, private and paid-only."""
    owner, free = await make_user(app, "paid_user"), await make_user(app, "free_user")
    deleted = await create(stub, owner, is_public=True)
    await stub.DeleteDocument(pb.DeleteDocumentRequest(id=deleted.id), metadata=owner.metadata)
    private = await create(stub, owner)
    paid = await create(stub, owner, is_public=True, requires_paid_access=True)
    ids = {"missing": str(uuid.uuid4()), "deleted": deleted.id, "private": private.id,
           "paid-for-free-user": paid.id}  # fmt: skip
    return owner, free, ids


def _calls(stub: Stub, doc_id: str, public_id: str) -> dict[str, object]:
    mask = field_mask_pb2.FieldMask(paths=["title"])
    return {
        "get": (stub.GetDocument, pb.GetDocumentRequest(id=doc_id)),
        "update": (
            stub.UpdateDocument,
            pb.UpdateDocumentRequest(document=pb.Document(id=doc_id, title="x"), update_mask=mask),
        ),
        "update-etag": (
            stub.UpdateDocument,
            pb.UpdateDocumentRequest(
                document=pb.Document(id=doc_id, title="x"), update_mask=mask, etag='W/"1"'
            ),
        ),
        "delete": (stub.DeleteDocument, pb.DeleteDocumentRequest(id=doc_id)),
        "delete-etag": (stub.DeleteDocument, pb.DeleteDocumentRequest(id=doc_id, etag='W/"1"')),
        "batch-get": (
            stub.BatchGetDocuments,
            pb.BatchGetDocumentsRequest(ids=[public_id, doc_id]),
        ),
    }


async def test_hidden_answers_are_byte_identical_to_missing(
    app: App, stub: Stub, hidden_world: World
) -> None:
    owner, free, ids = hidden_world
    public = await create(stub, owner, is_public=True)
    before = await raw_documents(app.settings.database_url or "", list(ids.values()))
    for rpc in _calls(stub, ids["missing"], public.id):
        answers = {}
        for case, doc_id in ids.items():
            method, request = _calls(stub, doc_id, public.id)[rpc]  # type: ignore[misc]
            error = await fails(method(request, metadata=free.metadata), grpc.StatusCode.NOT_FOUND)
            answers[case] = answer(error)
        assert len(set(answers.values())) == 1, (rpc, answers)
    after = await raw_documents(app.settings.database_url or "", list(ids.values()))
    assert after == before


async def test_admin_only_writes_on_hidden_documents_change_nothing(
    app: App, stub: Stub, hidden_world: World
) -> None:
    owner, free, ids = hidden_world
    before = await raw_documents(app.settings.database_url or "", list(ids.values()))
    for doc_id in ids.values():
        await fails(
            stub.UndeleteDocument(pb.UndeleteDocumentRequest(id=doc_id), metadata=free.metadata),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        await fails(
            stub.PurgeDocument(pb.PurgeDocumentRequest(id=doc_id), metadata=free.metadata),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    # The owner is not an admin either: owning a deleted document does not let them restore it.
    await fails(
        stub.UndeleteDocument(
            pb.UndeleteDocumentRequest(id=ids["deleted"]), metadata=owner.metadata
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    after = await raw_documents(app.settings.database_url or "", list(ids.values()))
    assert after == before


async def test_deleted_document_is_absent_even_for_its_owner(
    app: App, stub: Stub, hidden_world: World
) -> None:
    owner, _, ids = hidden_world
    missing = await fails(
        stub.GetDocument(pb.GetDocumentRequest(id=ids["missing"]), metadata=owner.metadata),
        grpc.StatusCode.NOT_FOUND,
    )
    deleted = await fails(
        stub.GetDocument(pb.GetDocumentRequest(id=ids["deleted"]), metadata=owner.metadata),
        grpc.StatusCode.NOT_FOUND,
    )
    assert answer(missing) == answer(deleted)
    again = pb.DeleteDocumentRequest(id=ids["deleted"])
    await fails(stub.DeleteDocument(again, metadata=owner.metadata), grpc.StatusCode.NOT_FOUND)


async def test_non_admin_show_deleted_is_permission_denied(stub: Stub, hidden_world: World) -> None:
    owner, _, ids = hidden_world
    for request in (
        pb.GetDocumentRequest(id=ids["private"], show_deleted=True),
        pb.GetDocumentRequest(id=ids["missing"], show_deleted=True),
    ):
        await fails(
            stub.GetDocument(request, metadata=owner.metadata), grpc.StatusCode.PERMISSION_DENIED
        )
    await fails(
        stub.ListDocuments(pb.ListDocumentsRequest(show_deleted=True), metadata=owner.metadata),
        grpc.StatusCode.PERMISSION_DENIED,
    )
