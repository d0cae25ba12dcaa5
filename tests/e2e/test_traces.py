"""Traces (the otel extra, installed by the dev extra): a server span per call continuing the
caller's W3C traceparent, with database child spans, caught by the SDK's in-memory exporter
(docgate.edge.tracing, docgate.db.tracing). Off unless the OTEL_* environment asks."""

from __future__ import annotations

from collections.abc import Iterator

import grpc.aio
import pytest
from docgate.v1 import users_pb2, users_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from docgate.bootstrap import build_app
from docgate.db import tracing as db_tracing
from docgate.edge import tracing
from docgate.edge.calls import CallInterceptor
from docgate.server import start_server
from tests.conftest import settings_for
from tests.support import make_user

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    try:
        yield provider, memory
    finally:
        db_tracing.uninstrument()  # the driver instrumentation is process-wide
        provider.shutdown()


async def test_a_call_is_a_server_span_with_database_children(
    database_url: str, exporter: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, memory = exporter
    app = build_app(settings_for(database_url), database_url, tracer_provider=provider)
    user = await make_user(app, "free_user")
    running = await start_server(app, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            metadata = (*user.metadata, ("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"))
            me = await users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
                users_pb2.GetCurrentUserRequest(), metadata=metadata, timeout=10
            )
    finally:
        await running.stop(None)
    assert me.username == user.username
    spans = [s for s in memory.get_finished_spans() if s.context.trace_id == int(TRACE_ID, 16)]
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["/docgate.v1.UserService/GetCurrentUser"]
    server = servers[0]
    assert server.parent is not None
    assert server.parent.span_id == int(PARENT_ID, 16)  # the caller's span
    children = [
        s for s in spans if s.parent is not None and s.parent.span_id == server.context.span_id
    ]
    database = [s for s in children if s.kind is SpanKind.CLIENT]
    assert len(database) >= 2, [s.name for s in spans]  # the caller's roles, then the user
    assert all(s.attributes and s.attributes.get("db.system") == "postgresql" for s in database)


async def test_without_a_provider_and_otel_environment_nothing_is_added(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    app = build_app(settings_for(database_url), database_url)
    try:
        assert [type(i) for i in app.interceptors] == [CallInterceptor]
    finally:
        await app.close()


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_SERVICE_NAME": "docgate"}, False),
    ],
)
def test_the_otel_environment_decides(environ: dict[str, str], wanted: bool) -> None:
    assert tracing.wanted(environ) is wanted
