"""Composition root: builds every long-lived object from Settings and hands them in.

Nothing here runs at import time. The server, the CLI and the tests all call `build_app`.
`App.services` is the service registry: one ServiceBinding per served gRPC service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from docgate import policy
from docgate.config import Settings
from docgate.db.engine import create_engine, create_health_engine, create_session_factory
from docgate.db.filtering import install_document_policy
from docgate.db.uow import UnitOfWork
from docgate.edge.auth import AuthInterceptor
from docgate.edge.errors import ErrorMappingInterceptor
from docgate.edge.registry import ServiceBinding, method_paths
from docgate.edge.requests import RequestIdInterceptor
from docgate.pagination import PageTokens
from docgate.repositories.principals import confirm_caller
from docgate.services.documents import DocumentService
from docgate.services.projects import ProjectService
from docgate.services.roles import RoleService
from docgate.services.users import UserService
from docgate.tokens import TokenVerifier, page_token_key
from docgate.v1 import (
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
    # Outermost first: the request id is set before errors are mapped and callers checked.
    interceptors: tuple[RequestIdInterceptor, ErrorMappingInterceptor, AuthInterceptor]
    services: tuple[ServiceBinding, ...]
    # The health check's own one-connection engine (docgate.db.engine.create_health_engine).
    health_engine: AsyncEngine

    def check_policy_covers_services(self) -> None:
        """Deny by default is a safety net, not a way to ship a method nobody can call."""
        unlisted = policy.unlisted_methods(method_paths(self.services))
        if unlisted:
            raise UnlistedMethodError(f"served but not in policy.RPC_ACCESS: {unlisted}")

    async def close(self) -> None:
        await self.engine.dispose()
        await self.health_engine.dispose()


def _services(uow: UnitOfWork, settings: Settings) -> tuple[ServiceBinding, ...]:
    """The registry: adding a service is one line here (docs/operations.md)."""
    bind = ServiceBinding.of
    return (
        bind(DocumentService(uow, settings), documents_pb2, documents_pb2_grpc, "DocumentService"),
        bind(RoleService(uow), roles_pb2, roles_pb2_grpc, "RoleService"),
        bind(UserService(uow), users_pb2, users_pb2_grpc, "UserService"),
        bind(ProjectService(uow, settings), projects_pb2, projects_pb2_grpc, "ProjectService"),
    )


def _worker(settings: Settings) -> str | None:
    """What ``x-docgate-worker`` says in a worker of ``serve --workers N``: INDEX/PID."""
    return None if settings.worker_index is None else f"{settings.worker_index}/{os.getpid()}"


def build_app(settings: Settings, database_url: str) -> App:
    engine = create_engine(database_url, settings)
    sessions = create_session_factory(engine)
    install_document_policy(sessions)
    uow = UnitOfWork(
        engine, sessions, PageTokens(page_token_key(settings)), confirm_caller=confirm_caller
    )
    auth = AuthInterceptor(TokenVerifier(settings), uow)
    return App(
        settings=settings,
        engine=engine,
        uow=uow,
        interceptors=(RequestIdInterceptor(_worker(settings)), ErrorMappingInterceptor(), auth),
        services=_services(uow, settings),
        health_engine=create_health_engine(database_url, settings),
    )
