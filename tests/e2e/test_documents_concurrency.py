"""Races: one etag, many updates → exactly one wins; one request_id, many creates → one row."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb
from google.protobuf import field_mask_pb2

from docgate.bootstrap import App
from tests.conformance.support import DEADLINE, Stub, create, fails, raw_documents
from tests.support import make_user


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


async def _outcomes(calls: list) -> list[object]:  # type: ignore[type-arg]
    return list(await asyncio.gather(*calls, return_exceptions=True))


@pytest.mark.parametrize("rpc", ["update", "delete", "mixed"])
async def test_concurrent_changes_from_one_etag_one_wins(app: App, stub: Stub, rpc: str) -> None:
    alice = await make_user(app, "free_user")
    doc = await create(stub, alice, title="start")
    mask = field_mask_pb2.FieldMask(paths=["title", "content"])

    def update(i: int):  # type: ignore[no-untyped-def]
        request = pb.UpdateDocumentRequest(
            document=pb.Document(id=doc.id, title=f"writer {i}", content=f"body {i}"),
            update_mask=mask,
            etag=doc.etag,
        )
        return stub.UpdateDocument(request, metadata=alice.metadata, timeout=DEADLINE)

    def delete(i: int):  # type: ignore[no-untyped-def]
        request = pb.DeleteDocumentRequest(id=doc.id, etag=doc.etag)
        return stub.DeleteDocument(request, metadata=alice.metadata, timeout=DEADLINE)

    pick = {"update": lambda i: update(i), "delete": lambda i: delete(i),
            "mixed": lambda i: update(i) if i % 2 else delete(i)}[rpc]  # fmt: skip
    outcomes = await _outcomes([pick(i) for i in range(8)])
    winners = [o for o in outcomes if isinstance(o, pb.Document)]
    losers = [o for o in outcomes if not isinstance(o, pb.Document)]
    assert len(winners) == 1, outcomes
    # A loser that waited for the winner's row lock re-reads the row: after an update its etag
    # is stale (ABORTED); after a delete the document is gone for everyone (NOT_FOUND).
    allowed = {grpc.StatusCode.ABORTED} if rpc == "update" else {
        grpc.StatusCode.ABORTED, grpc.StatusCode.NOT_FOUND}  # fmt: skip
    assert all(isinstance(o, grpc.aio.AioRpcError) and o.code() in allowed for o in losers), losers
    row = (await raw_documents(app.settings.database_url or "", [doc.id]))[doc.id]
    assert row["version"] == 2
    (winner,) = winners
    assert (row["title"], row["content"], row["is_deleted"]) == (
        winner.title, winner.content, winner.HasField("delete_time"),
    )  # fmt: skip


async def test_updates_without_etag_are_serialised_not_lost(app: App, stub: Stub) -> None:
    alice = await make_user(app)
    doc = await create(stub, alice)
    mask = field_mask_pb2.FieldMask(paths=["content"])
    await _outcomes(
        [
            stub.UpdateDocument(
                pb.UpdateDocumentRequest(
                    document=pb.Document(id=doc.id, content=str(i)), update_mask=mask
                ),
                metadata=alice.metadata,
                timeout=DEADLINE,
            )
            for i in range(6)
        ]
    )
    row = (await raw_documents(app.settings.database_url or "", [doc.id]))[doc.id]
    assert row["version"] == 7  # every write applied once, none overwrote another's bump


async def test_ten_concurrent_creates_with_one_request_id_make_one_row(
    app: App, stub: Stub
) -> None:
    alice = await make_user(app)
    request_id = str(uuid.uuid4())
    replies = await asyncio.gather(
        *(create(stub, alice, request_id=request_id, title="same request") for _ in range(10))
    )
    assert len({r.id for r in replies}) == 1
    assert len({r.SerializeToString() for r in replies}) == 1
    retry = await create(stub, alice, request_id=request_id, title="same request")
    assert retry == replies[0]
    # The same request_id on another request is not a retry (AIP-155): INVALID_ARGUMENT.
    await fails(
        create(stub, alice, request_id=request_id, title="another request"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )
    listed = await stub.ListDocuments(
        pb.ListDocumentsRequest(owner_id=str(alice.id), include_total_size=True),
        metadata=alice.metadata,
    )
    assert listed.total_size == 1


async def test_request_id_is_per_caller(app: App, stub: Stub) -> None:
    alice, bob = await make_user(app), await make_user(app)
    request_id = str(uuid.uuid4())
    first = await create(stub, alice, request_id=request_id)
    second = await create(stub, bob, request_id=request_id)
    assert first.id != second.id and second.owner_id == str(bob.id)
