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

With read replicas configured (docgate.db.replicas), an RPC's `read()` runs on a replica when
one is usable, and the primary connection the edge authenticated on goes back to the pool at
once; `transaction()`, and any read after it in the same call, run on the primary. After an
RPC's commit the unit of work records the commit's WAL position for the call's consistency
token (docgate.db.consistency), which a later read sends back to be served by a replica only
once it shows the write.

Every block runs under `docgate.db.errors.database_errors`: what leaves the unit of work is a
domain error, never a driver exception.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final, Protocol

import asyncpg
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from docgate.db import audit
from docgate.db.consistency import ReplicaFailed, current_call, lsn_from_pg
from docgate.db.errors import database_errors
from docgate.db.replicas import ReadReplicas
from docgate.errors import Aborted, Unauthenticated, Unavailable
from docgate.pagination import PageTokens
from docgate.principal import Principal, current_principal

log = logging.getLogger(__name__)

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


async def _close(session: AsyncSession) -> None:
    """Close a session that did anything; one that only lent its connection to driver-level
    statements (no transaction of its own, no objects) has nothing to close, and closing it
    would cost a greenlet."""
    sync = session.sync_session
    if sync.in_transaction() or len(sync.identity_map) or sync.new or sync.deleted:
        await session.close()


def _actor(session: AsyncSession) -> uuid.UUID | None:
    principal = session.info.get(PRINCIPAL)
    return principal.user_id if isinstance(principal, Principal) else None


@dataclass
class _RpcScope:
    # On the primary; None once handed back to the pool because a replica serves the read.
    connection: AsyncConnection | None
    session: AsyncSession | None = None
    in_transaction: bool = False
    replica: AsyncConnection | None = None  # the read replica this call's read runs on
    wrote: bool = False  # a transaction began: nothing of this call may run twice


# Re-reads the caller inside a write transaction (docgate.repositories.principals, injected by
# the composition root: this layer does not know how a caller is stored).
ConfirmCaller = Callable[[AsyncConnection, Principal], Awaitable[None]]
# Called with the session of every transaction that committed, before the block that opened it
# goes on (docgate.repositories.principal_cache forgets callers a commit changed).
AfterCommit = Callable[[AsyncSession], None]
# Called after every commit that wrote an audit entry (docgate.db.sealer.AuditSealer.poke).
AuditWritten = Callable[[], None]


# The pool's state right now: (connections checked out, connections beyond the pool size).
PoolState = Callable[[], tuple[int, int]]


class PoolObserver(Protocol):
    """Told about each RPC's connection (docgate.edge.metrics.Metrics is one): how long the
    call waited for it, and that it was checked out and in; ``state`` reads the pool's state
    (when the observer wants it, not on every call)."""

    def pool_acquired(self, waited: float, state: PoolState) -> None: ...
    def pool_released(self, state: PoolState) -> None: ...
    def pool_timed_out(self, waited: float) -> None: ...


# The current RPC's scope; module-level, as the contextvars documentation asks. Set by `rpc()`
# in the RPC's own task, so it never reaches another call.
_scope: ContextVar[_RpcScope | None] = ContextVar("docgate_rpc_scope", default=None)


async def _record_commit(connection: AsyncConnection) -> None:
    """After an RPC's COMMIT: the WAL position a replica must replay to show it, for the
    call's consistency token (docgate.db.consistency says why this position). Read on the
    driver, outside any transaction. A failure here must not fail a write that committed: the
    call then answers without a token (its next reads may lag, as token-less reads may)."""
    call = current_call()
    if call is None:
        return
    try:
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        position = await driver.fetchval("SELECT pg_current_wal_insert_lsn()::text")
        call.committed = lsn_from_pg(str(position))
    except Exception:
        log.warning("commit position not read; the call answers without a consistency token")


class UnitOfWork:
    def __init__(
        self,
        engine: AsyncEngine,
        session_factory: async_sessionmaker[AsyncSession],
        tokens: PageTokens,
        confirm_caller: ConfirmCaller | None = None,
        pool_observer: PoolObserver | None = None,
        after_commit: AfterCommit | None = None,
        replicas: ReadReplicas | None = None,
        audit_written: AuditWritten | None = None,
    ) -> None:
        self._engine = engine
        self._audit_written = audit_written
        self._replicas = replicas
        self._session_factory = session_factory
        self._tokens = tokens
        self._confirm_caller = confirm_caller
        pool = engine.pool
        has_state = hasattr(pool, "checkedout") and hasattr(pool, "overflow")
        self._pool_observer = pool_observer if has_state else None
        self._after_commit = after_commit

    def _session(self, connection: AsyncConnection, principal: Principal | None) -> AsyncSession:
        who = principal if principal is not None else current_principal()
        return self._session_factory(
            bind=connection, info={PRINCIPAL: who, PAGE_TOKENS: self._tokens}
        )

    @asynccontextmanager
    async def rpc(self) -> AsyncIterator[AsyncConnection]:
        """The RPC's connection, held until the call ends (autocommit until a transaction)."""
        observer = self._pool_observer
        with database_errors():
            start, acquired = time.perf_counter(), False
            try:
                async with self._engine.connect() as connection:
                    acquired = True
                    if observer is not None:
                        observer.pool_acquired(time.perf_counter() - start, self._pool_state)
                    scope = _RpcScope(connection)
                    token = _scope.set(scope)
                    try:
                        yield connection
                    finally:
                        _scope.reset(token)
                        if scope.session is not None:
                            await _close(scope.session)
                        if scope.replica is not None:
                            await scope.replica.close()
                        if scope.connection is not None and scope.connection is not connection:
                            await scope.connection.close()  # reopened for a write after a read
            except PoolTimeout:
                if observer is not None and not acquired:
                    observer.pool_timed_out(time.perf_counter() - start)
                raise
            finally:
                if observer is not None and acquired:
                    observer.pool_released(self._pool_state)

    def _pool_state(self) -> tuple[int, int]:
        pool = self._engine.pool
        return pool.checkedout(), pool.overflow()  # type: ignore[attr-defined]

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
        try:
            with database_errors():
                if scope.session is None:
                    scope.session = self._session(await self._reading(scope), principal)
                yield scope.session
        except (Unavailable, Aborted) as error:
            if scope.replica is None or scope.session is None or scope.wrote:
                raise
            await self._drop_replica(scope, dead=isinstance(error, Unavailable))
            raise ReplicaFailed(str(error)) from error

    async def _drop_replica(self, scope: _RpcScope, *, dead: bool) -> None:
        """A read on a replica failed for the replica's sake (it went away, or cancelled the
        query for a conflict with recovery): forget it for this call, so the edge can run the
        read again on the primary (docgate.edge.consistency)."""
        session, replica = scope.session, scope.replica
        scope.session = scope.replica = None
        if session is None or replica is None:
            return
        with contextlib.suppress(Exception):
            await session.close()
        with contextlib.suppress(Exception):
            await (replica.invalidate() if dead else replica.close())

    async def _reading(self, scope: _RpcScope) -> AsyncConnection:
        """Where an RPC's reads run: a read replica when one is usable (and has replayed the
        call's consistency token), its primary connection then back to the pool at once;
        else the primary. A read after a write in the same call finds the session already
        bound to the primary and never gets here."""
        call = current_call()
        if self._replicas is not None and self._replicas.configured and call is not None:
            if call.primary_only:
                return await self._primary(scope)
            replica = await self._replicas.connect(call.read_after)
            if replica is not None:
                scope.replica = replica
                if scope.connection is not None:
                    await scope.connection.close()
                    scope.connection = None
                return replica
        return await self._primary(scope)

    async def _primary(self, scope: _RpcScope) -> AsyncConnection:
        if scope.connection is None:
            scope.connection = await self._engine.connect()
        return scope.connection

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
        if scope.session is not None:  # bound to the autocommit phase: start afresh
            await scope.session.close()
            scope.session = None
        if scope.replica is not None:  # a read before the write: done with the replica
            await scope.replica.close()
            scope.replica = None
        scope.wrote = True
        connection = await self._primary(scope)
        if connection.in_transaction():  # autobegun by autocommit reads: nothing at the server
            await connection.commit()
        await connection.execution_options(isolation_level=TRANSACTION_ISOLATION)
        entry = None
        async with connection.begin():
            session = self._session(connection, principal)
            scope.session, scope.in_transaction = session, True
            try:
                await self._confirm(connection, session)
                yield session
                await session.flush()
                entry = await audit.append_for(session, _actor(session))  # last, unsealed
            finally:
                scope.in_transaction = False
        if entry is not None and self._audit_written is not None:
            self._audit_written()  # committed: the sealer may seal it now
        if self._after_commit is not None:  # reached only when the COMMIT succeeded
            self._after_commit(session)
        await _record_commit(connection)

    async def seal_audit(self) -> None:
        """Seal every audit entry committed so far (waiting for the chain lock), on the
        primary, before a read of the trail: it then sees the chain whole. In an RPC its reads
        stay on the primary after this (a replica may not have replayed the seal yet)."""
        scope = _scope.get()
        with database_errors():
            if scope is None:
                async with self._engine.connect() as connection:
                    await audit.seal_all(connection)
                return
            call = current_call()
            if call is not None:
                call.primary_only = True
            if scope.session is not None or scope.in_transaction:
                raise RuntimeError("seal_audit() comes before the call's reads and writes")
            await audit.seal_all(await self._primary(scope))

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
