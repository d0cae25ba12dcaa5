"""Bad input is INVALID_ARGUMENT before any SQL runs, never INTERNAL."""

from __future__ import annotations

import uuid

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb
from google.protobuf import field_mask_pb2

from docgate.bootstrap import App
from tests.conformance.support import Stub, create, fails
from tests.support import make_user

BAD_IDS = ["", "abc", str(uuid.uuid4()) + "0", "{" + str(uuid.uuid4()) + "}", "\x00" * 36]


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


@pytest.mark.parametrize("bad_id", BAD_IDS)
async def test_malformed_ids(app: App, stub: Stub, bad_id: str) -> None:
    user = await make_user(app, "admin")
    md = user.metadata
    calls = [
        stub.GetDocument(pb.GetDocumentRequest(id=bad_id), metadata=md),
        stub.BatchGetDocuments(pb.BatchGetDocumentsRequest(ids=[bad_id]), metadata=md),
        stub.UpdateDocument(
            pb.UpdateDocumentRequest(document=pb.Document(id=bad_id), update_mask=_mask("title")),
            metadata=md,
        ),
        stub.DeleteDocument(pb.DeleteDocumentRequest(id=bad_id), metadata=md),
        stub.UndeleteDocument(pb.UndeleteDocumentRequest(id=bad_id), metadata=md),
        stub.PurgeDocument(pb.PurgeDocumentRequest(id=bad_id), metadata=md),
        stub.ListDocuments(pb.ListDocumentsRequest(owner_id=bad_id or "x"), metadata=md),
    ]
    for call in calls:
        await fails(call, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ID")


@pytest.mark.parametrize(
    ("document", "request_id", "reason"),
    [
        (pb.Document(title=""), "", "INVALID_TITLE"),
        (pb.Document(title="x" * 256), "", "INVALID_TITLE"),
        (pb.Document(title="a\x00b"), "", "INVALID_TITLE"),
        (pb.Document(title="ok", content="a\x00b"), "", "INVALID_CONTENT"),
        (pb.Document(title="ok", content="x" * (1024 * 1024 + 1)), "", "CONTENT_TOO_LARGE"),
        (pb.Document(title="ok", content="é" * (512 * 1024 + 1)), "", "CONTENT_TOO_LARGE"),
        (pb.Document(title="ok"), "not-a-uuid", "INVALID_ID"),
    ],
)
async def test_bad_create(
    app: App, stub: Stub, document: pb.Document, request_id: str, reason: str
) -> None:
    user = await make_user(app)
    request = pb.CreateDocumentRequest(document=document, request_id=request_id)
    await fails(
        stub.CreateDocument(request, metadata=user.metadata),
        grpc.StatusCode.INVALID_ARGUMENT,
        reason,
    )


async def test_limits_are_inclusive(app: App, stub: Stub) -> None:
    user = await make_user(app)
    doc = await create(stub, user, title="t" * 255, content="x" * (1024 * 1024))
    assert len(doc.title) == 255
    emoji = await create(stub, user, title="🦆" * 255, content="'; DROP TABLE documents;--")
    assert emoji.title == "🦆" * 255


@pytest.mark.parametrize(
    ("paths", "document", "etag", "reason"),
    [
        ((), pb.Document(title="x"), "", "INVALID_UPDATE_MASK"),
        (("owner_id",), pb.Document(), "", "INVALID_UPDATE_MASK"),
        (("title", "id"), pb.Document(title="x"), "", "INVALID_UPDATE_MASK"),
        (("*", "title"), pb.Document(title="x"), "", "INVALID_UPDATE_MASK"),
        (("title",), pb.Document(title=""), "", "INVALID_TITLE"),
        (("*",), pb.Document(title=""), "", "INVALID_TITLE"),
        (("content",), pb.Document(content="\x00"), "", "INVALID_CONTENT"),
        (("title",), pb.Document(title="x"), "1", "INVALID_ETAG"),
        (("title",), pb.Document(title="x"), 'W/"x"', "INVALID_ETAG"),
    ],
)
async def test_bad_update(
    app: App, stub: Stub, paths: tuple[str, ...], document: pb.Document, etag: str, reason: str
) -> None:
    user = await make_user(app)
    doc = await create(stub, user)
    document.id = doc.id
    request = pb.UpdateDocumentRequest(document=document, update_mask=_mask(*paths), etag=etag)
    await fails(
        stub.UpdateDocument(request, metadata=user.metadata),
        grpc.StatusCode.INVALID_ARGUMENT,
        reason,
    )
    unchanged = await stub.GetDocument(pb.GetDocumentRequest(id=doc.id), metadata=user.metadata)
    assert unchanged == doc


async def test_batch_size_limits(app: App, stub: Stub) -> None:
    user = await make_user(app)
    doc = await create(stub, user)
    for ids in ([], [doc.id] * 101):
        await fails(
            stub.BatchGetDocuments(pb.BatchGetDocumentsRequest(ids=ids), metadata=user.metadata),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_BATCH_SIZE",
        )
    full = await stub.BatchGetDocuments(
        pb.BatchGetDocumentsRequest(ids=[doc.id] * 100), metadata=user.metadata
    )
    assert len(full.documents) == 100


async def test_bad_owner_role_filter(app: App, stub: Stub) -> None:
    user = await make_user(app)
    for role in ("Admin", "a b", "x\x00"):
        await fails(
            stub.ListDocuments(pb.ListDocumentsRequest(owner_role=role), metadata=user.metadata),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
