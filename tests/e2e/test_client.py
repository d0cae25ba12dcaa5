"""docgate.client against real servers: the token on every call, typed errors with their
ErrorInfo reason, the service config's retries (UNAVAILABLE on idempotent RPCs only), request
ids filled in on creates, and TLS with a client certificate."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2, users_pb2, users_pb2_grpc
from grpc_health.v1 import health_pb2

from docgate import client as docgate_client
from docgate.bootstrap import App, build_app
from docgate.client import NotFound, Tls, Unauthenticated, Unavailable, connect
from docgate.errors import database_unavailable
from docgate.server import RunningServer, start_server
from tests.conftest import settings_for
from tests.pki import Authority
from tests.support import count_rows, make_user, with_servicer

ME = users_pb2.GetCurrentUserRequest()


async def test_calls_carry_the_token_and_errors_their_reason(
    app: App, server: RunningServer
) -> None:
    user = await make_user(app, "free_user")
    asked: list[str] = []

    def token() -> str:  # a refreshing token source: asked once per call
        asked.append(user.token)
        return user.token

    async with connect(f"127.0.0.1:{server.port}", token=token) as docgate:
        assert (await docgate.users.GetCurrentUser(ME)).username == user.username
        missing = documents_pb2.GetDocumentRequest(id=str(uuid.uuid4()))
        with pytest.raises(NotFound) as caught:
            await docgate.documents.GetDocument(missing)
        assert caught.value.reason == "DOCUMENT_NOT_FOUND"
        assert isinstance(caught.value, grpc.aio.AioRpcError)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert "DOCUMENT_NOT_FOUND" in str(caught.value)
        reply = await docgate.health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert len(asked) == 3
    async with connect(f"127.0.0.1:{server.port}") as anonymous:
        with pytest.raises(Unauthenticated) as refused:
            await anonymous.users.GetCurrentUser(ME)
        assert refused.value.reason is not None


async def test_creates_get_a_request_id_so_a_retry_cannot_create_twice(
    app: App, server: RunningServer
) -> None:
    user = await make_user(app, "free_user")
    request = documents_pb2.CreateDocumentRequest(
        document=documents_pb2.Document(title="with an id", content="c")
    )
    async with connect(f"127.0.0.1:{server.port}", token=user.token) as docgate:
        created = await docgate.documents.CreateDocument(request)
        own = str(uuid.uuid4())
        request_with_own = documents_pb2.CreateDocumentRequest(
            document=documents_pb2.Document(title="own id", content="c"), request_id=own
        )
        first = await docgate.documents.CreateDocument(request_with_own)
        assert (await docgate.documents.CreateDocument(request_with_own)).id == first.id
    assert request.request_id == ""  # the caller's message is left alone
    sql = "SELECT count(*) FROM documents WHERE id = :id AND request_id IS NOT NULL"
    assert await count_rows(app, sql, id=uuid.UUID(created.id)) == 1
    sql = "SELECT count(*) FROM documents WHERE request_id = :rid"
    assert await count_rows(app, sql, rid=uuid.UUID(own)) == 1


class _Flaky(users_pb2_grpc.UserServiceServicer):
    """Answers UNAVAILABLE to the first call of each method, then for real."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def _attempt(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.calls[method] == 1:
            raise database_unavailable()

    async def GetCurrentUser(self, request: Any, context: Any) -> users_pb2.User:
        self._attempt("GetCurrentUser")
        return users_pb2.User(username="flaky")

    async def UpdateUser(self, request: Any, context: Any) -> users_pb2.User:
        self._attempt("UpdateUser")
        return users_pb2.User(username="updated")


async def test_unavailable_is_retried_on_reads_and_not_on_other_writes(database_url: str) -> None:
    flaky = _Flaky()
    app = build_app(settings_for(database_url), database_url)
    app = with_servicer(app, "docgate.v1.UserService", flaky)
    admin = await make_user(app, "admin")
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with connect(f"127.0.0.1:{running.port}", token=admin.token) as docgate:
            assert (await docgate.users.GetCurrentUser(ME)).username == "flaky"
            assert flaky.calls["GetCurrentUser"] == 2
            with pytest.raises(Unavailable) as caught:
                await docgate.users.UpdateUser(users_pb2.UpdateUserRequest())
            assert caught.value.reason == "DATABASE_UNAVAILABLE"
            assert flaky.calls["UpdateUser"] == 1
        # The same server through a channel without the service config: no retry at all.
        flaky.calls.clear()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError):
                await users_pb2_grpc.UserServiceStub(plain).GetCurrentUser(
                    ME, metadata=admin.metadata, timeout=10
                )
        assert flaky.calls["GetCurrentUser"] == 1
    finally:
        await running.stop(None)


async def test_connect_over_mtls(database_url: str, tmp_path: Path) -> None:
    ca = Authority(tmp_path / "ca")
    leaf, client_cert = ca.issue("server", server=True), ca.issue("client")
    tls = {
        "tls_cert_file": leaf.cert_file,
        "tls_key_file": leaf.key_file,
        "tls_client_ca_file": ca.cert_file,
    }
    app = build_app(settings_for(database_url, **tls), database_url)
    user = await make_user(app, "free_user")
    running = await start_server(app, "127.0.0.1:0")
    try:
        mtls = Tls(ca.cert_file, client_cert.cert_file, client_cert.key_file)
        async with connect(f"127.0.0.1:{running.port}", token=user.token, tls=mtls) as docgate:
            assert (await docgate.users.GetCurrentUser(ME)).username == user.username
        no_cert = Tls(ca_file=ca.cert_file, server_name="localhost")
        async with connect(f"127.0.0.1:{running.port}", token=user.token, tls=no_cert) as docgate:
            with pytest.raises(Unavailable):
                await docgate.users.GetCurrentUser(ME, timeout=10)
    finally:
        await running.stop(None)


def test_service_config_is_the_packaged_copy_of_the_documented_one() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "service-config.json"
    assert docgate_client.service_config() == docs.read_text()
