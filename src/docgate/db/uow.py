"""Unit of work: one pooled connection per RPC; a real transaction only where one is needed.

The engine runs in AUTOCOMMIT, so a read-only RPC costs no BEGIN/COMMIT round trips (and the
pool's pre-ping is a single `;` instead of BEGIN/`;`/ROLLBACK). Each statement is atomic on
its own, which is all a read needs: under READ COMMITTED a transaction would not give two
statements one snapshot either. Writes go through `transaction()`, which switches the RPC's
connection to READ COMMITTED and wraps the block in BEGIN … COMMIT (ROLLBACK on any exception,
CancelledError included).

What a repository gets is one thing: the session `read()` or `transaction()` hands out. It is
bound to the RPC's connection and carries the caller (`principal_of(session)`), which is where
both the repositories and the ORM policy listener read it — one channel, not two. Inside an RPC
the edge opens `rpc()` (and authenticates on that connection); `read()` and `transaction()`
join it. Outside an RPC (CLI, demo seeding, tests) each block checks out a connection of its
own and names its principal. Never fan a unit of work out to other tasks (asyncio.gather): a
connection must not be shared between tasks.

A write transaction starts by confirming its caller (`confirm_caller`): the roles read at the
door must still hold, and are locked FOR SHARE until commit, so a revocation that committed
first always wins and one that comes later waits for the write.

Every block runs under `docgate.db.errors.database_errors`: what leaves the unit of work is a
domain error, never a driver exception.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from docgate.db import audit
from docgate.db.errors import database_errors
from docgate.errors import Unauthenticated
from docgate.pagination import PageTokens
from docgate.principal import Principal, current_principal

TRANSACTION_ISOLATION: Final = "READ COMMITTED"
PRINCIPAL: Final = "docgate.principal"  # the session.info keys
PAGE_TOKENS: Final = "docgate.page_tokens"


def principal_of(session: AsyncSession | Session) -> Principal:
    """The caller a docgate session works for (fail closed when it has none)."""
    principal = session.info.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise Unauthenticated("missing or invalid credentials")
    return principal


def page_tokens(session: AsyncSession | Session) -> PageTokens:
    """The deployment's page token codec (its key is configuration, handed to every session
    by the unit of work like the caller is)."""
    tokens = session.info.get(PAGE_TOKENS)
    if not isinstance(tokens, PageTokens):
        raise RuntimeError("a session not opened by docgate's unit of work")
    return tokens


def _actor(session: AsyncSession) -> uuid.UUID | None:
    principal = session.info.get(PRINCIPAL)
    return principal.user_id if isinstance(principal, Principal) else None


@dataclass
class _RpcScope:
    connection: AsyncConnection
    session: AsyncSession | None = None
    in_transaction: bool = False


# Re-reads the caller inside a write transaction (docgate.repositories.principals, injected by
# the composition root: this layer does not know how a caller is stored).
ConfirmCaller = Callable[[AsyncConnection, Principal], Awaitable[None]]

# The current RPC's scope; module-level, as the contextvars documentation asks. Set by `rpc()`
# in the RPC's own task, so it never reaches another call.
_scope: ContextVar[_RpcScope | None] = ContextVar("docgate_rpc_scope", default=None)


class UnitOfWork:
    def __init__(
        self,
        engine: AsyncEngine,
        session_factory: async_sessionmaker[AsyncSession],
        tokens: PageTokens,
        confirm_caller: ConfirmCaller | None = None,
    ) -> None:
        self._engine = engine
        self._session_factory = session_factory
        self._tokens = tokens
        self._confirm_caller = confirm_caller

    def _session(self, connection: AsyncConnection, principal: Principal | None) -> AsyncSession:
        who = principal if principal is not None else current_principal()
        return self._session_factory(
            bind=connection, info={PRINCIPAL: who, PAGE_TOKENS: self._tokens}
        )

    @asynccontextmanager
    async def rpc(self) -> AsyncIterator[AsyncConnection]:
        """The RPC's connection, held until the call ends (autocommit until a transaction)."""
        with database_errors():
            async with self._engine.connect() as connection:
                scope = _RpcScope(connection)
                token = _scope.set(scope)
                try:
                    yield connection
                finally:
                    _scope.reset(token)
                    if scope.session is not None:
                        await scope.session.close()

    @asynccontextmanager
    async def read(self, principal: Principal | None = None) -> AsyncIterator[AsyncSession]:
        """A session whose statements each commit on their own (no transaction), working for
        ``principal`` (default: the RPC's caller)."""
        scope = _scope.get()
        with database_errors():
            if scope is None:
                async with self._engine.connect() as connection:
                    session = self._session(connection, principal)
                    try:
                        yield session
                    finally:
                        await session.close()
                return
            if scope.session is None:
                scope.session = self._session(scope.connection, principal)
            yield scope.session

    @asynccontextmanager
    async def transaction(self, principal: Principal | None = None) -> AsyncIterator[AsyncSession]:
        """A session in one transaction, working for ``principal`` (default: the RPC's caller):
        committed when the outermost block ends, rolled back when it raises. Repositories never
        commit."""
        scope = _scope.get()
        with database_errors():
            if scope is None:
                async with (
                    self._engine.connect() as connection,
                    self._transaction_on(_RpcScope(connection), principal) as session,
                ):
                    yield session
                return
            if scope.in_transaction:
                assert scope.session is not None
                yield scope.session
                return
            async with self._transaction_on(scope, principal) as session:
                yield session

    @asynccontextmanager
    async def _transaction_on(
        self, scope: _RpcScope, principal: Principal | None
    ) -> AsyncIterator[AsyncSession]:
        connection = scope.connection
        if scope.session is not None:  # bound to the autocommit phase: start afresh
            await scope.session.close()
            scope.session = None
        if connection.in_transaction():  # autobegun by autocommit reads: nothing at the server
            await connection.commit()
        await connection.execution_options(isolation_level=TRANSACTION_ISOLATION)
        async with connection.begin():
            session = self._session(connection, principal)
            scope.session, scope.in_transaction = session, True
            try:
                await self._confirm(connection, session)
                yield session
                await session.flush()
                await audit.append_for(session, _actor(session))  # last: holds the chain lock
            finally:
                scope.in_transaction = False

    async def audit_read(self, resource: str) -> None:
        """Leave the ADMIN_BYPASS_READ entry of an admin read that used the bypass."""
        async with self.transaction() as session:
            audit.note(session, resource, action=audit.Action.ADMIN_BYPASS_READ)

    async def _confirm(self, connection: AsyncConnection, session: AsyncSession) -> None:
        """First thing in an RPC's write transaction: the caller, whose roles the edge read at
        the door, still holds them — and holds them, FOR SHARE, until this transaction ends, so
        a revocation either committed before (and this call is ABORTED) or waits until after.
        (Work outside an RPC names its principal itself and has no door to have read it at.)"""
        principal = session.info.get(PRINCIPAL)
        if (
            self._confirm_caller is not None
            and _scope.get() is not None
            and isinstance(principal, Principal)
            and not principal.system
        ):
            await self._confirm_caller(connection, principal)
