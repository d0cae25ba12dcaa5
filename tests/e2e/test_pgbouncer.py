"""DOCGATE_DATABASE_POOLER=transaction: docgate served through a real PgBouncer in transaction
mode, with fewer server connections than docgate's pool, so consecutive statements of one
docgate connection land on different PostgreSQL backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb
from docgate.v1 import documents_pb2_grpc, users_pb2, users_pb2_grpc

from docgate.bootstrap import build_app
from docgate.server import start_server
from tests import pgbouncer
from tests.conftest import settings_for
from tests.support import make_user, unique

pytestmark = pytest.mark.skipif(not pgbouncer.installed(), reason=pgbouncer.INSTALL_HINT)
SERVER_CONNECTIONS = 2  # PgBouncer's pool: fewer than docgate's, so backends are shared


@pytest.fixture
async def pgbouncer_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    port = pgbouncer.free_port()
    command = pgbouncer.configure(tmp_path / "pgbouncer", database_url, port, SERVER_CONNECTIONS)
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            break
        yield pgbouncer.url_through(database_url, port)
    finally:
        proc.terminate()
        await proc.wait()


async def test_docgate_through_pgbouncer_transaction_mode(pgbouncer_url: str) -> None:
    settings = settings_for(pgbouncer_url, database_pooler="transaction", pool_size=6)
    app = build_app(settings, pgbouncer_url)
    running = await start_server(app, "127.0.0.1:0")
    try:
        user = await make_user(app, "paid_user")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            docs = documents_pb2_grpc.DocumentServiceStub(channel)
            users = users_pb2_grpc.UserServiceStub(channel)

            async def round_trip() -> None:
                me = await users.GetCurrentUser(
                    users_pb2.GetCurrentUserRequest(), metadata=user.metadata, timeout=20
                )
                assert me.username == user.username
                made = await docs.CreateDocument(
                    pb.CreateDocumentRequest(document=pb.Document(title=unique("t"))),
                    metadata=user.metadata,
                    timeout=20,
                )
                got = await docs.GetDocument(
                    pb.GetDocumentRequest(id=made.id), metadata=user.metadata, timeout=20
                )
                assert got.etag == made.etag
                page = await docs.ListDocuments(
                    pb.ListDocumentsRequest(page_size=5), metadata=user.metadata, timeout=20
                )
                assert page.documents

            # Many calls at once over 6 docgate connections and 2 PostgreSQL backends: every
            # statement must be complete in itself (no named statement left on a backend).
            for _ in range(5):
                await asyncio.gather(*(round_trip() for _ in range(12)))
    finally:
        await running.stop(None)


async def test_without_pooler_mode_pgbouncer_refuses_docgate(pgbouncer_url: str) -> None:
    """What the setting is for: the default session settings (statement_timeout as a startup
    parameter) are refused by PgBouncer outright."""
    app = build_app(settings_for(pgbouncer_url), pgbouncer_url)
    try:
        with pytest.raises(Exception, match="unsupported startup parameter"):
            async with app.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
    finally:
        await app.close()
