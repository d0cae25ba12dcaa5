"""Database spans, opt-in (see docgate.edge.tracing): the OpenTelemetry asyncpg
instrumentation, because docgate's hottest statements run on the driver directly
(docgate.db.prepared) where a SQLAlchemy-level instrumentation would not see them. One span per
statement, a child of the call's server span. The instrumentation patches asyncpg's connection
class, so it is process-wide; `uninstrument` undoes it (tests)."""

from __future__ import annotations

from typing import Any


def instrument(tracer_provider: Any) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=tracer_provider)


def uninstrument() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
