"""Every content within the limit is stored, however many distinct words it has (issue 11
finding 2): the search vector covers the title and the first 100,000 characters of content."""

from __future__ import annotations

import grpc
import grpc.aio
from docgate.v1 import documents_pb2 as pb
from docgate.v1 import documents_pb2_grpc
from google.protobuf import field_mask_pb2

from docgate.bootstrap import App
from tests.support import make_user, unique

PREFIX = 100_000


def _distinct_words(total_bytes: int, marker: str) -> str:
    """About ``total_bytes`` of distinct words (base-26 numerals), ``marker`` first."""
    words, size, n = [marker], len(marker), 0
    while size < total_bytes:
        n += 1
        word, k = "", n
        while k:
            k, digit = divmod(k, 26)
            word += chr(ord("a") + digit)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)


async def test_a_megabyte_of_distinct_words_is_stored_and_searchable(
    app: App, channel: grpc.aio.Channel
) -> None:
    user = await make_user(app, "free_user")
    stub = documents_pb2_grpc.DocumentServiceStub(channel)
    first, late = unique("w"), unique("late")
    content = _distinct_words(1_000_000, first)
    content = content[: 1_000_000 - len(late) - 1] + " " + late
    assert len(content.encode()) <= app.settings.max_content_bytes
    doc = await stub.CreateDocument(
        pb.CreateDocumentRequest(document=pb.Document(title=unique("t"), content=content)),
        metadata=user.metadata,
        timeout=60,
    )
    assert len(doc.content) == len(content)
    found = await stub.SearchDocuments(
        pb.SearchDocumentsRequest(query=first), metadata=user.metadata
    )
    assert [d.id for d in found.documents] == [doc.id]
    # Past the indexed prefix a word is stored but not searchable: what search promises.
    beyond = await stub.SearchDocuments(
        pb.SearchDocumentsRequest(query=late), metadata=user.metadata
    )
    assert beyond.documents == []
    updated = await stub.UpdateDocument(
        pb.UpdateDocumentRequest(
            document=pb.Document(id=doc.id, content=_distinct_words(1_000_000, unique("u"))),
            update_mask=field_mask_pb2.FieldMask(paths=["content"]),
        ),
        metadata=user.metadata,
        timeout=60,
    )
    assert updated.etag != doc.etag
