"""ListDocuments and SearchDocuments: order, filters, pages, totals and page tokens."""

from __future__ import annotations

import base64

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb

from docgate.bootstrap import App
from tests.conformance.support import Stub, create, fails
from tests.support import make_user, unique


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


async def _all_pages(stub: Stub, user, request: pb.ListDocumentsRequest) -> list[pb.Document]:  # type: ignore[no-untyped-def]
    documents: list[pb.Document] = []
    while True:
        page = await stub.ListDocuments(request, metadata=user.metadata)
        documents.extend(page.documents)
        if not page.next_page_token:
            return documents
        request.page_token = page.next_page_token


async def test_owner_filter_every_order_and_total(app: App, stub: Stub) -> None:
    alice = await make_user(app, "free_user")
    made = [await create(stub, alice, title=t) for t in ("b", "a", "c", "a", "d")]
    expected = {
        "": [d.id for d in reversed(made)],
        "create_time desc": [d.id for d in reversed(made)],
        "create_time": [d.id for d in made],
        "title": [d.id for d in sorted(made, key=lambda d: (d.title, d.id))],
        "update_time desc": [d.id for d in reversed(made)],
    }
    for order_by, ids in expected.items():
        for size in (1, 2, 0):
            request = pb.ListDocumentsRequest(
                owner_id=str(alice.id), order_by=order_by, page_size=size, include_total_size=True
            )
            got = await _all_pages(stub, alice, request)
            assert [d.id for d in got] == ids, (order_by, size)
    page = await stub.ListDocuments(
        pb.ListDocumentsRequest(owner_id=str(alice.id), page_size=2, include_total_size=True),
        metadata=alice.metadata,
    )
    assert page.total_size == 5 and len(page.documents) == 2 and page.next_page_token


async def test_flag_and_owner_role_filters(app: App, stub: Stub) -> None:
    owner, paid_owner = await make_user(app, "free_user"), await make_user(app, "paid_user")
    admin = await make_user(app, "admin")
    marker = unique("m")
    docs = {
        (pub, paid): await create(
            stub, owner, title=marker, is_public=pub, requires_paid_access=paid
        )
        for pub in (False, True)
        for paid in (False, True)
    }
    other = await create(stub, paid_owner, title=marker, is_public=True)
    request = pb.ListDocumentsRequest(owner_id=str(owner.id), is_public=True)
    got = {d.id for d in await _all_pages(stub, admin, request)}
    assert got == {docs[(True, False)].id, docs[(True, True)].id}
    request = pb.ListDocumentsRequest(
        owner_id=str(owner.id), is_public=False, requires_paid_access=True
    )
    assert [d.id for d in await _all_pages(stub, admin, request)] == [docs[(False, True)].id]
    # owner_role: documents whose owner holds that role (here: paid_user); scoped by search.
    paid_docs = await _all_pages(
        stub, admin, pb.ListDocumentsRequest(owner_role="paid_user", owner_id=str(paid_owner.id))
    )
    assert [d.id for d in paid_docs] == [other.id]
    none = await _all_pages(
        stub, admin, pb.ListDocumentsRequest(owner_role="paid_user", owner_id=str(owner.id))
    )
    assert none == []


async def test_page_size_is_clamped_and_negative_refused(app: App, stub: Stub) -> None:
    alice = await make_user(app)
    await fails(
        stub.ListDocuments(pb.ListDocumentsRequest(page_size=-1), metadata=alice.metadata),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_SIZE",
    )
    page = await stub.ListDocuments(
        pb.ListDocumentsRequest(page_size=10**9), metadata=alice.metadata
    )
    assert len(page.documents) <= 500


async def test_page_tokens_are_bound_and_tamper_evident(app: App, stub: Stub) -> None:
    alice = await make_user(app)
    for _ in range(3):
        await create(stub, alice)
    request = pb.ListDocumentsRequest(owner_id=str(alice.id), page_size=1)
    token = (await stub.ListDocuments(request, metadata=alice.metadata)).next_page_token
    assert token
    # Same parameters, other page size: fine (AIP-158).
    ok = pb.ListDocumentsRequest(owner_id=str(alice.id), page_size=2, page_token=token)
    assert len((await stub.ListDocuments(ok, metadata=alice.metadata)).documents) == 2
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-3] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    bad_tokens = [tampered, "garbage", token[:-2], "x" * 5000, token + "AA"]
    for bad in bad_tokens:
        request = pb.ListDocumentsRequest(owner_id=str(alice.id), page_token=bad)
        await fails(
            stub.ListDocuments(request, metadata=alice.metadata),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAGE_TOKEN",
        )
    reuses = [
        pb.ListDocumentsRequest(page_token=token),
        pb.ListDocumentsRequest(owner_id=str(alice.id), order_by="title", page_token=token),
        pb.ListDocumentsRequest(owner_id=str(alice.id), is_public=False, page_token=token),
        pb.ListDocumentsRequest(
            owner_id=str(alice.id), requires_paid_access=False, page_token=token
        ),
    ]
    for request in reuses:
        await fails(
            stub.ListDocuments(request, metadata=alice.metadata),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAGE_TOKEN",
        )
    search = pb.SearchDocumentsRequest(query="anything", page_token=token)
    await fails(
        stub.SearchDocuments(search, metadata=alice.metadata),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )


async def test_a_token_carries_no_authority(app: App, stub: Stub) -> None:
    """A token minted by one caller, replayed by another, still shows only the second caller's
    documents."""
    paid, free = await make_user(app, "paid_user"), await make_user(app, "free_user")
    for _ in range(3):
        await create(stub, paid, is_public=True, requires_paid_access=True)
    request = pb.ListDocumentsRequest(owner_id=str(paid.id), page_size=1)
    token = (await stub.ListDocuments(request, metadata=paid.metadata)).next_page_token
    request.page_token = token
    assert list((await stub.ListDocuments(request, metadata=free.metadata)).documents) == []


async def test_bad_order_by_is_invalid(app: App, stub: Stub) -> None:
    alice = await make_user(app)
    for order_by in ("owner_id", "title desc", "create_time desc; drop table documents", "id"):
        await fails(
            stub.ListDocuments(pb.ListDocumentsRequest(order_by=order_by), metadata=alice.metadata),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ORDER_BY",
        )
    ok = pb.ListDocumentsRequest(order_by="  CREATE_TIME   desc ", owner_id=str(alice.id))
    await stub.ListDocuments(ok, metadata=alice.metadata)


async def test_search_pages_visible_documents_newest_first(app: App, stub: Stub) -> None:
    owner, free = await make_user(app, "paid_user"), await make_user(app, "free_user")
    word = unique("w")
    # Newest first, however well each matches (the older one matches the word three times).
    older = await create(stub, owner, title=f"{word} {word}", content=word, is_public=True)
    newer = await create(stub, owner, title="other", content=f"{word} text", is_public=True)
    await create(stub, owner, title=word, is_public=True, requires_paid_access=True)
    await create(stub, owner, title=word)  # private
    found: list[str] = []
    request = pb.SearchDocumentsRequest(query=word, page_size=1)
    while True:
        page = await stub.SearchDocuments(request, metadata=free.metadata)
        found.extend(d.id for d in page.documents)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert found == [newer.id, older.id]
    owner_view = await stub.SearchDocuments(
        pb.SearchDocumentsRequest(query=word), metadata=owner.metadata
    )
    assert len(owner_view.documents) == 4
    quoted = await stub.SearchDocuments(
        pb.SearchDocumentsRequest(query=f'"{word} text" -nothing'), metadata=free.metadata
    )
    assert [d.id for d in quoted.documents] == [newer.id]


@pytest.mark.parametrize("query", ["", "   ", "a\x00b", "x" * 1001])
async def test_bad_search_queries_are_invalid(app: App, stub: Stub, query: str) -> None:
    alice = await make_user(app)
    await fails(
        stub.SearchDocuments(pb.SearchDocumentsRequest(query=query), metadata=alice.metadata),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_QUERY",
    )


async def test_search_with_only_punctuation_finds_nothing(app: App, stub: Stub) -> None:
    alice = await make_user(app)
    for query in ("!!!", "'; drop table documents; --", "%_\\", "-", "OR"):
        reply = await stub.SearchDocuments(
            pb.SearchDocumentsRequest(query=query), metadata=alice.metadata
        )
        assert reply is not None
