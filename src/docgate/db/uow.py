"""Unit of work: one pooled connection per RPC; a real transaction only where one is needed.

The engine runs in AUTOCOMMIT, so a read-only RPC costs no BEGIN/COMMIT round trips (and the
pool's pre-ping is a single `;` instead of BEGIN/`;`/ROLLBACK). Each statement is atomic on
its own, which is all a read needs: under READ COMMITTED a transaction would not give two
statements one snapshot either. Writes go through `transaction()`, which switches the RPC's
connection to READ COMMITTED and wraps the block in BEGIN … COMMIT (ROLLBACK on any exception,
CancelledError included).

Inside an RPC the auth interceptor opens `rpc()`; `read()` and `transaction()` then join that
connection, so the caller's roles and the RPC's data travel over one connection. Outside an RPC
(CLI, demo seeding, tests) each block checks out a connection of its own. Never fan a unit of
work out to other tasks (asyncio.gather): a connection must not be shared between tasks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

TRANSACTION_ISOLATION = "READ COMMITTED"


@dataclass
class _RpcScope:
    connection: AsyncConnection
    session: AsyncSession | None = None
    in_transaction: bool = False


class UnitOfWork:
    def __init__(
        self, engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        self._engine = engine
        self._session_factory = session_factory
        self._scope: ContextVar[_RpcScope | None] = ContextVar("docgate_rpc", default=None)

    @asynccontextmanager
    async def rpc(self) -> AsyncIterator[AsyncConnection]:
        """The RPC's connection, held until the call ends (autocommit until a transaction)."""
        async with self._engine.connect() as connection:
            scope = _RpcScope(connection)
            token = self._scope.set(scope)
            try:
                yield connection
            finally:
                self._scope.reset(token)
                if scope.session is not None:
                    await scope.session.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session whose statements each commit on their own (no transaction)."""
        scope = self._scope.get()
        if scope is None:
            async with self._session_factory() as session:
                yield session
            return
        if scope.session is None:
            scope.session = self._session_factory(bind=scope.connection)
        yield scope.session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed when the outermost block ends, rolled back
        when it raises. Repositories never commit."""
        scope = self._scope.get()
        if scope is None:
            async with (
                self._engine.connect() as connection,
                self._transaction_on(_RpcScope(connection)) as session,
            ):
                yield session
            return
        if scope.in_transaction:
            assert scope.session is not None
            yield scope.session
            return
        async with self._transaction_on(scope) as session:
            yield session

    @asynccontextmanager
    async def _transaction_on(self, scope: _RpcScope) -> AsyncIterator[AsyncSession]:
        connection = scope.connection
        if scope.session is not None:  # bound to the autocommit phase: start afresh
            await scope.session.close()
            scope.session = None
        if connection.in_transaction():  # autobegun by autocommit reads: nothing at the server
            await connection.commit()
        await connection.execution_options(isolation_level=TRANSACTION_ISOLATION)
        async with connection.begin():
            session = self._session_factory(bind=connection)
            scope.session, scope.in_transaction = session, True
            try:
                yield session
                await session.flush()
            finally:
                scope.in_transaction = False
