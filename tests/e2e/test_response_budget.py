"""DOCGATE_MAX_RESPONSE_BYTES: no answer is built past the budget. BatchGetDocuments over it is
RESOURCE_EXHAUSTED (RESPONSE_TOO_LARGE) before any content is read; List and Search pages end
early with a token that continues without loss or repetition."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import grpc.aio
from docgate.v1 import documents_pb2 as pb

from docgate.bootstrap import build_app
from docgate.server import start_server
from tests.conformance.support import Stub, create
from tests.conftest import settings_for
from tests.support import TestUser, expect_error, make_user, unique

BUDGET = 64 * 1024
PAGE = 20_000  # three documents of this content fit in BUDGET, four do not


@asynccontextmanager
async def _served(
    database_url: str, **settings: object
) -> AsyncIterator[tuple[Stub, TestUser, TestUser]]:
    """A server of the test's own, and two callers."""
    app = build_app(settings_for(database_url, **settings), database_url)
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            users = await make_user(app, "free_user"), await make_user(app, "free_user")
            yield Stub(channel), *users
    finally:
        await running.stop(None)
        await app.close()


async def test_batch_get_over_the_budget_is_resource_exhausted(database_url: str) -> None:
    async with _served(database_url, max_response_bytes=BUDGET) as (stub, user, _):
        docs = [await create(stub, user, content="x" * PAGE) for _ in range(3)]
        ids = [doc.id for doc in docs]
        got = await stub.BatchGetDocuments(
            pb.BatchGetDocumentsRequest(ids=ids), metadata=user.metadata
        )
        assert [doc.id for doc in got.documents] == ids
        # The same document four times is four in the answer: each duplicate counts.
        error = await expect_error(
            stub.BatchGetDocuments(
                pb.BatchGetDocumentsRequest(ids=[ids[0]] * 4), metadata=user.metadata
            ),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "RESPONSE_TOO_LARGE",
        )
        assert "DOCGATE_MAX_RESPONSE_BYTES" in (error.details() or "")
        assert "fewer" in (error.details() or "")


async def _pages(stub: Stub, user: TestUser, request: pb.ListDocumentsRequest) -> list[list[str]]:
    pages: list[list[str]] = []
    while True:
        page = await stub.ListDocuments(request, metadata=user.metadata)
        pages.append([doc.id for doc in page.documents])
        if not page.next_page_token:
            return pages
        request.page_token = page.next_page_token


async def test_list_and_search_pages_end_early_and_continue(database_url: str) -> None:
    async with _served(database_url, max_response_bytes=BUDGET) as (stub, user, _):
        word = unique("w")
        made = [await create(stub, user, content=f"{word} " + "x" * PAGE) for _ in range(7)]
        expected = [doc.id for doc in reversed(made)]
        request = pb.ListDocumentsRequest(owner_id=str(user.id), page_size=10)
        pages = await _pages(stub, user, request)
        assert [len(page) for page in pages] == [3, 3, 1]
        assert [doc_id for page in pages for doc_id in page] == expected

        found: list[list[str]] = []
        search = pb.SearchDocumentsRequest(query=word, page_size=10)
        while True:
            answer = await stub.SearchDocuments(search, metadata=user.metadata)
            found.append([doc.id for doc in answer.documents])
            if not answer.next_page_token:
                break
            search.page_token = answer.next_page_token
        assert [len(page) for page in found] == [3, 3, 1]
        assert sorted(doc_id for page in found for doc_id in page) == sorted(expected)


async def test_a_first_document_over_the_budget_is_resource_exhausted(database_url: str) -> None:
    async with _served(database_url, max_response_bytes=BUDGET) as (stub, user, _):
        big = await create(stub, user, content="x" * (BUDGET + 1))
        await expect_error(
            stub.ListDocuments(
                pb.ListDocumentsRequest(owner_id=str(user.id)), metadata=user.metadata
            ),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "RESPONSE_TOO_LARGE",
        )
        # GetDocument still reads it: one document is bounded by DOCGATE_MAX_CONTENT_BYTES.
        got = await stub.GetDocument(pb.GetDocumentRequest(id=big.id), metadata=user.metadata)
        assert len(got.content) == BUDGET + 1
