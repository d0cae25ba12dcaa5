"""Helpers for the DocumentService tests (e2e and conformance): calls, failures, raw rows."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any

import asyncpg
import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb
from docgate.v1 import documents_pb2_grpc
from sqlalchemy.engine import make_url

from docgate.edge.requests import HEADER as REQUEST_ID
from tests.support import TestUser, error_info, unique

DEADLINE = 10.0
Stub = documents_pb2_grpc.DocumentServiceStub


async def create(stub: Stub, user: TestUser, request_id: str = "", **fields: Any) -> pb.Document:
    fields.setdefault("title", unique("t"))
    request = pb.CreateDocumentRequest(document=pb.Document(**fields), request_id=request_id)
    return await stub.CreateDocument(request, metadata=user.metadata, timeout=DEADLINE)


async def fails(
    call: Awaitable[Any], code: grpc.StatusCode, reason: str | None = None
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, (caught.value.code(), caught.value.details())
    if reason is not None:
        info = error_info(caught.value)
        assert info is not None and info.reason == reason, info
    return caught.value


def answer(error: grpc.aio.AioRpcError) -> tuple[Any, ...]:
    """Everything a client can observe of a failed call, but its request id (which names the
    call, so it differs from one call to the next whatever the call was about)."""
    trailers = tuple(kv for kv in error.trailing_metadata() or () if kv[0] != REQUEST_ID)
    return (error.code(), error.details(), trailers)


async def raw_documents(database_url: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Rows straight from PostgreSQL (no ORM, no policy), by id."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT * FROM documents WHERE id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids]
        )
    finally:
        await conn.close()
    return {str(row["id"]): dict(row) for row in rows}
