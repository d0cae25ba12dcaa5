"""Composition root: builds every long-lived object from Settings and hands them in.

Nothing here runs at import time. The server, the CLI and the tests all call `build_app`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from docgate.auth.interceptor import AuthInterceptor
from docgate.auth.tokens import TokenVerifier
from docgate.config import Settings
from docgate.db.engine import create_engine, create_session_factory
from docgate.db.uow import UnitOfWork
from docgate.services.documents import DocumentService
from docgate.services.errors import ErrorMappingInterceptor
from docgate.services.roles import RoleService
from docgate.services.users import UserService


@dataclass(frozen=True)
class App:
    settings: Settings
    engine: AsyncEngine
    uow: UnitOfWork
    interceptors: tuple[ErrorMappingInterceptor, AuthInterceptor]
    documents: DocumentService
    roles: RoleService
    users: UserService

    async def close(self) -> None:
        await self.engine.dispose()


def build_app(settings: Settings, database_url: str) -> App:
    engine = create_engine(database_url, settings)
    uow = UnitOfWork(engine, create_session_factory(engine))
    auth = AuthInterceptor(TokenVerifier(settings), uow)
    return App(
        settings=settings,
        engine=engine,
        uow=uow,
        interceptors=(ErrorMappingInterceptor(), auth),
        documents=DocumentService(uow, settings),
        roles=RoleService(uow),
        users=UserService(uow),
    )
