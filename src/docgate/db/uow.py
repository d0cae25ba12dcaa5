"""Unit of work: one AsyncSession and one transaction per RPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class UnitOfWork:
    """``async with uow.transaction() as session:`` commits once when the outermost block ends
    and rolls back when it raises (including CancelledError). Repositories never commit.

    An inner ``transaction()`` in the same task joins the open one. The auth interceptor opens
    the RPC's transaction (it reads the caller's roles in it) and the servicer joins it, so an RPC
    costs one pooled connection and one BEGIN/COMMIT, and the roles it was authorised with are
    read in the same transaction as its data. Do not fan a unit of work out to other tasks
    (asyncio.gather): an AsyncSession must not be shared between tasks.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._current: ContextVar[AsyncSession | None] = ContextVar("docgate_uow", default=None)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        joined = self._current.get()
        if joined is not None:
            yield joined
            return
        async with self._session_factory() as session, session.begin():
            token = self._current.set(session)
            try:
                yield session
            finally:
                self._current.reset(token)
