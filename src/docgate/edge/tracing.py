"""Traces, opt-in: a server span per call, with the OpenTelemetry grpc instrumentation.

On only when the ``otel`` extra is installed (``pip install 'docgate[otel]'``) and the standard
OpenTelemetry environment asks for traces: ``OTEL_TRACES_EXPORTER`` (``otlp`` or ``console``),
or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``),
and not ``OTEL_SDK_DISABLED=true``. Otherwise nothing here is imported and no interceptor is
added: zero cost. The instrumentation's server interceptor goes outside docgate's own wrapper
(docgate.edge.calls), so the span — continued from the caller's W3C ``traceparent`` metadata —
is current while the call authenticates and runs, and the database spans
(docgate.db.tracing) are its children.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

from docgate.edge.handlers import ServerInterceptor

log = logging.getLogger(__name__)

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def wanted(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Whether the OTEL_* environment asks for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return any(environ.get(name) for name in _ENDPOINTS)


def installed() -> bool:
    return importlib.util.find_spec("opentelemetry.sdk") is not None


def from_environment() -> Any:
    """A TracerProvider exporting as the OTEL_* environment says, or None (traces off)."""
    if not wanted():
        return None
    if not installed():
        log.warning("OTEL_* asks for traces but the otel extra is not installed: traces off")
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "docgate"}
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter: SpanExporter
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, TLS: from OTEL_EXPORTER_OTLP_*
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("traces on (%s exporter)", type(exporter).__name__)
    return provider


def server_interceptor(tracer_provider: Any) -> ServerInterceptor:
    """The OpenTelemetry grpc.aio server interceptor, tracing with ``tracer_provider``."""
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    interceptor: ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=tracer_provider
    )
    return interceptor
