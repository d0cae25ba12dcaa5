"""Composition root: builds every long-lived object from Settings and hands them in.

Nothing here runs at import time. The server, the CLI and the tests all call `build_app`.
`App.services` is the service registry: one ServiceBinding per served gRPC service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from docgate import policy
from docgate.config import Settings
from docgate.db import tracing as db_tracing
from docgate.db.engine import (
    create_engine,
    create_health_engine,
    create_replica,
    create_session_factory,
)
from docgate.db.filtering import install_document_policy
from docgate.db.replicas import ReadReplicas
from docgate.db.sealer import APPLICATION_NAME as SEALER
from docgate.db.sealer import AuditSealer
from docgate.db.uow import UnitOfWork
from docgate.edge import tracing
from docgate.edge.access import AccessLog
from docgate.edge.auth import AuthInterceptor
from docgate.edge.batches import Batcher
from docgate.edge.calls import CallInterceptor
from docgate.edge.consistency import ConsistencyInterceptor
from docgate.edge.handlers import ServerInterceptor
from docgate.edge.metrics import Metrics
from docgate.edge.registry import ServiceBinding, method_paths
from docgate.pagination import PageTokens
from docgate.repositories import principal_cache
from docgate.repositories.principal_cache import PrincipalCache
from docgate.repositories.principals import confirm_caller
from docgate.services.access import AccessService
from docgate.services.audit import AuditService
from docgate.services.documents import DocumentService
from docgate.services.projects import ProjectService
from docgate.services.roles import RoleService
from docgate.services.users import UserService
from docgate.tokens import TokenVerifier, page_token_key
from docgate.v1 import (
    access_pb2,
    access_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    documents_pb2,
    documents_pb2_grpc,
    projects_pb2,
    projects_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)


class UnlistedMethodError(RuntimeError):
    """A served method has no row in policy.RPC_ACCESS."""


@dataclass(frozen=True)
class App:
    settings: Settings
    engine: AsyncEngine
    uow: UnitOfWork
    # Outermost first: tracing (when on), then the edge's one wrapper (docgate.edge.calls).
    interceptors: tuple[ServerInterceptor, ...]
    services: tuple[ServiceBinding, ...]
    # The health check's own one-connection engine (docgate.db.engine.create_health_engine).
    health_engine: AsyncEngine
    # Read replicas (none unless DOCGATE_DATABASE_READ_URLS); the server keeps them checked.
    replicas: ReadReplicas
    # Callers remembered at the door (docgate.repositories.principal_cache).
    principals: PrincipalCache
    # Prometheus metrics, when DOCGATE_METRICS_LISTEN is set (the server serves them).
    metrics: Metrics | None = None
    # Seals committed audit entries in the background (docgate.db.sealer); the server starts
    # it, a commit that wrote an entry pokes it.
    sealer: AuditSealer | None = None
    # What calls noted for the metrics and the access log, not yet written
    # (docgate.edge.batches): flushed on close.
    batcher: Batcher = field(default_factory=Batcher)

    def check_policy_covers_services(self) -> None:
        """Deny by default is a safety net, not a way to ship a method nobody can call."""
        unlisted = policy.unlisted_methods(method_paths(self.services))
        if unlisted:
            raise UnlistedMethodError(f"served but not in policy.RPC_ACCESS: {unlisted}")

    async def close(self) -> None:
        self.batcher.flush()
        if self.sealer is not None:
            await self.sealer.close()
        await self.principals.close()
        await self.engine.dispose()
        await self.health_engine.dispose()
        await self.replicas.dispose()


def _services(uow: UnitOfWork, settings: Settings) -> tuple[ServiceBinding, ...]:
    """The registry: adding a service is one line here (docs/operations.md)."""
    bind = ServiceBinding.of
    return (
        bind(DocumentService(uow, settings), documents_pb2, documents_pb2_grpc, "DocumentService"),
        bind(RoleService(uow), roles_pb2, roles_pb2_grpc, "RoleService"),
        bind(UserService(uow), users_pb2, users_pb2_grpc, "UserService"),
        bind(ProjectService(uow, settings), projects_pb2, projects_pb2_grpc, "ProjectService"),
        bind(AccessService(uow), access_pb2, access_pb2_grpc, "AccessService"),
        bind(AuditService(uow), audit_pb2, audit_pb2_grpc, "AuditService"),
    )


def _worker(settings: Settings) -> str | None:
    """What ``x-docgate-worker`` says in a worker of ``serve --workers N``: INDEX/PID."""
    return None if settings.worker_index is None else f"{settings.worker_index}/{os.getpid()}"


def build_app(settings: Settings, database_url: str, tracer_provider: object = None) -> App:
    """``tracer_provider``: an OpenTelemetry TracerProvider to trace with (tests); None: the
    standard OTEL_* environment decides (docgate.edge.tracing)."""
    engine = create_engine(database_url, settings)
    sessions = create_session_factory(engine)
    install_document_policy(sessions)
    batcher = Batcher()
    metrics = Metrics(batcher=batcher) if settings.metrics_listen else None
    if metrics is not None:
        metrics.pool_configured(settings.pool_size, settings.max_overflow)
    # LISTEN needs a session of its own, which a transaction pooler does not give: behind
    # PgBouncer (DOCGATE_DATABASE_POOLER=transaction) the cache is off (docs/scaling.md).
    principals = PrincipalCache(
        database_url,
        enabled=settings.principal_cache and settings.database_pooler != "transaction",
    )
    principal_cache.install(sessions)
    replicas = ReadReplicas(
        engine,
        [create_replica(url, settings) for url in settings.read_urls],
        settings.replica_max_lag_seconds,
    )
    sealer = AuditSealer(create_health_engine(database_url, settings, SEALER))
    uow = UnitOfWork(
        engine,
        sessions,
        PageTokens(page_token_key(settings)),
        confirm_caller=confirm_caller,
        pool_observer=metrics,
        after_commit=principals.after_commit,
        replicas=replicas,
        audit_written=sealer.poke,
    )
    auth = AuthInterceptor(TokenVerifier(settings), uow, principals)
    access_log = AccessLog(batcher=batcher) if settings.access_log else None
    calls = CallInterceptor(auth, metrics, access_log=access_log, worker=_worker(settings))
    provider = tracer_provider if tracer_provider is not None else tracing.from_environment()
    traced: tuple[ServerInterceptor, ...] = ()
    if provider is not None:
        db_tracing.instrument(provider)
        traced = (tracing.server_interceptor(provider),)
    # Read-your-writes tokens only where there are replicas to read from: without them a
    # write pays no extra round trip for a commit position nobody can use.
    consistency = (ConsistencyInterceptor(),) if replicas.configured else ()
    return App(
        settings=settings,
        engine=engine,
        uow=uow,
        interceptors=(*traced, calls, *consistency),
        services=_services(uow, settings),
        health_engine=create_health_engine(database_url, settings),
        metrics=metrics,
        principals=principals,
        replicas=replicas,
        sealer=sealer,
        batcher=batcher,
    )
