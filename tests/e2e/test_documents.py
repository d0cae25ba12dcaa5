"""DocumentService through the real server: the happy paths of every RPC and their errors."""

from __future__ import annotations

import uuid

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb
from docgate.v1 import documents_pb2_grpc
from google.protobuf import field_mask_pb2

from docgate.bootstrap import App
from tests.support import error_info, make_user, unique

DEADLINE = 10.0


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> documents_pb2_grpc.DocumentServiceStub:
    return documents_pb2_grpc.DocumentServiceStub(channel)


async def _create(stub, user, **fields) -> pb.Document:  # type: ignore[no-untyped-def]
    fields.setdefault("title", unique("t"))
    request_id = fields.pop("request_id", "")
    return await stub.CreateDocument(
        pb.CreateDocumentRequest(document=pb.Document(**fields), request_id=request_id),
        metadata=user.metadata,
        timeout=DEADLINE,
    )


async def _fails(call, code: grpc.StatusCode, reason: str | None = None) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    if reason is not None:
        info = error_info(caught.value)
        assert info is not None and info.reason == reason
    return caught.value


async def test_create_then_get(app: App, stub) -> None:  # type: ignore[no-untyped-def]
    alice = await make_user(app, "free_user")
    created = await _create(stub, alice, title="Hello", content="world", is_public=True)
    assert created.owner_id == str(alice.id)
    assert (created.title, created.content, created.is_public) == ("Hello", "world", True)
    assert created.etag and created.create_time.seconds > 0
    assert not created.HasField("delete_time")
    got = await stub.GetDocument(
        pb.GetDocumentRequest(id=created.id), metadata=alice.metadata, timeout=DEADLINE
    )
    assert got == created


async def test_owner_is_the_caller_not_the_request(app: App, stub) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_user(app), await make_user(app)
    created = await _create(stub, alice, owner_id=str(bob.id))
    assert created.owner_id == str(alice.id)


async def test_update_with_mask_and_etag(app: App, stub) -> None:  # type: ignore[no-untyped-def]
    alice = await make_user(app, "free_user")
    doc = await _create(stub, alice, title="before", content="body")
    updated = await stub.UpdateDocument(
        pb.UpdateDocumentRequest(
            document=pb.Document(id=doc.id, title="after", content="ignored"),
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
            etag=doc.etag,
        ),
        metadata=alice.metadata,
        timeout=DEADLINE,
    )
    assert (updated.title, updated.content) == ("after", "body")
    assert updated.etag != doc.etag
    assert updated.update_time.ToDatetime() >= doc.update_time.ToDatetime()
    stale = pb.UpdateDocumentRequest(
        document=pb.Document(id=doc.id, title="again"),
        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        etag=doc.etag,
    )
    await _fails(
        stub.UpdateDocument(stale, metadata=alice.metadata, timeout=DEADLINE),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )


async def test_an_etag_never_issued_is_invalid_not_stale(app: App, stub) -> None:  # type: ignore[no-untyped-def]
    """Versions only grow: an etag ahead of the row's version cannot have come from docgate.
    Nothing is written."""
    alice = await make_user(app, "free_user")
    doc = await _create(stub, alice, title="kept")
    future = 'W/"999"'
    update = pb.UpdateDocumentRequest(
        document=pb.Document(id=doc.id, title="lost"),
        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        etag=future,
    )
    error = await _fails(
        stub.UpdateDocument(update, metadata=alice.metadata, timeout=DEADLINE),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ETAG",
    )
    info = error_info(error)
    assert info is not None and info.metadata["field"] == "etag"
    await _fails(
        stub.DeleteDocument(
            pb.DeleteDocumentRequest(id=doc.id, etag=future), metadata=alice.metadata
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ETAG",
    )
    got = await stub.GetDocument(pb.GetDocumentRequest(id=doc.id), metadata=alice.metadata)
    assert got == doc


async def test_update_star_replaces_every_field(app: App, stub) -> None:  # type: ignore[no-untyped-def]
    alice = await make_user(app, "free_user")
    doc = await _create(stub, alice, title="t", content="c", is_public=True)
    updated = await stub.UpdateDocument(
        pb.UpdateDocumentRequest(
            document=pb.Document(id=doc.id, title="new", requires_paid_access=True),
            update_mask=field_mask_pb2.FieldMask(paths=["*"]),
        ),
        metadata=alice.metadata,
        timeout=DEADLINE,
    )
    assert (updated.title, updated.content, updated.is_public) == ("new", "", False)
    assert updated.requires_paid_access


async def test_delete_undelete_purge(app: App, stub) -> None:  # type: ignore[no-untyped-def]
    alice, admin = await make_user(app, "free_user"), await make_user(app, "admin")
    doc = await _create(stub, alice)
    deleted = await stub.DeleteDocument(
        pb.DeleteDocumentRequest(id=doc.id, etag=doc.etag), metadata=alice.metadata
    )
    assert deleted.HasField("delete_time") and deleted.etag != doc.etag
    await _fails(
        stub.GetDocument(pb.GetDocumentRequest(id=doc.id), metadata=alice.metadata),
        grpc.StatusCode.NOT_FOUND,
        "DOCUMENT_NOT_FOUND",
    )
    await _fails(
        stub.GetDocument(
            pb.GetDocumentRequest(id=doc.id, show_deleted=True), metadata=alice.metadata
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    seen = await stub.GetDocument(
        pb.GetDocumentRequest(id=doc.id, show_deleted=True), metadata=admin.metadata
    )
    assert seen.HasField("delete_time")
    restored = await stub.UndeleteDocument(
        pb.UndeleteDocumentRequest(id=doc.id), metadata=admin.metadata
    )
    assert not restored.HasField("delete_time")
    await _fails(
        stub.UndeleteDocument(pb.UndeleteDocumentRequest(id=doc.id), metadata=admin.metadata),
        grpc.StatusCode.ALREADY_EXISTS,
        "DOCUMENT_NOT_DELETED",
    )
    assert await stub.GetDocument(pb.GetDocumentRequest(id=doc.id), metadata=alice.metadata)
    await stub.PurgeDocument(pb.PurgeDocumentRequest(id=doc.id), metadata=admin.metadata)
    await _fails(
        stub.GetDocument(
            pb.GetDocumentRequest(id=doc.id, show_deleted=True), metadata=admin.metadata
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await _fails(
        stub.PurgeDocument(pb.PurgeDocumentRequest(id=doc.id), metadata=admin.metadata),
        grpc.StatusCode.NOT_FOUND,
        "DOCUMENT_NOT_FOUND",
    )


async def test_purge_of_a_deleted_document(app: App, stub) -> None:  # type: ignore[no-untyped-def]
    alice, admin = await make_user(app), await make_user(app, "admin")
    doc = await _create(stub, alice)
    await stub.DeleteDocument(pb.DeleteDocumentRequest(id=doc.id), metadata=alice.metadata)
    await stub.PurgeDocument(pb.PurgeDocumentRequest(id=doc.id), metadata=admin.metadata)
    await _fails(
        stub.UndeleteDocument(pb.UndeleteDocumentRequest(id=doc.id), metadata=admin.metadata),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_visible_but_not_owned_is_permission_denied(app: App, stub) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_user(app, "free_user"), await make_user(app, "paid_user")
    doc = await _create(stub, alice, is_public=True)
    mask = field_mask_pb2.FieldMask(paths=["title"])
    update = pb.UpdateDocumentRequest(document=pb.Document(id=doc.id, title="x"), update_mask=mask)
    await _fails(
        stub.UpdateDocument(update, metadata=bob.metadata),
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_DOCUMENT_OWNER",
    )
    await _fails(
        stub.DeleteDocument(pb.DeleteDocumentRequest(id=doc.id), metadata=bob.metadata),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    for call in (
        stub.UndeleteDocument(pb.UndeleteDocumentRequest(id=doc.id), metadata=alice.metadata),
        stub.PurgeDocument(pb.PurgeDocumentRequest(id=doc.id), metadata=alice.metadata),
    ):
        await _fails(call, grpc.StatusCode.PERMISSION_DENIED)


async def test_admin_may_change_anything_visible(app: App, stub) -> None:  # type: ignore[no-untyped-def]
    alice, admin = await make_user(app), await make_user(app, "admin")
    doc = await _create(stub, alice)
    mask = field_mask_pb2.FieldMask(paths=["is_public"])
    updated = await stub.UpdateDocument(
        pb.UpdateDocumentRequest(document=pb.Document(id=doc.id, is_public=True), update_mask=mask),
        metadata=admin.metadata,
    )
    assert updated.is_public and updated.owner_id == str(alice.id)
    await stub.DeleteDocument(pb.DeleteDocumentRequest(id=doc.id), metadata=admin.metadata)


async def test_batch_get_in_request_order_with_duplicates(app: App, stub) -> None:  # type: ignore[no-untyped-def]
    alice = await make_user(app)
    docs = [await _create(stub, alice) for _ in range(3)]
    ids = [docs[2].id, docs[0].id, docs[2].id, docs[1].id]
    reply = await stub.BatchGetDocuments(
        pb.BatchGetDocumentsRequest(ids=ids), metadata=alice.metadata
    )
    assert [d.id for d in reply.documents] == ids
    await _fails(
        stub.BatchGetDocuments(
            pb.BatchGetDocumentsRequest(ids=[docs[0].id, str(uuid.uuid4())]),
            metadata=alice.metadata,
        ),
        grpc.StatusCode.NOT_FOUND,
        "DOCUMENT_NOT_FOUND",
    )
