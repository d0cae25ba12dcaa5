"""Hot-path statements: built with SQLAlchemy, compiled once, run on the driver directly.

SQLAlchemy stays the one way SQL is written (and the policy module the one source of row
predicates); what is skipped is the per-call work of its execution layer — cache-key
generation, execution context, result processing, a greenlet switch per call — which the
benchmark showed costing more CPU than the query itself on single-row reads.

Safety rule: every bound parameter of a prepared statement must be supplied on every call. A
value captured at build time (say, the first caller's id) can therefore never leak into another
caller's query: a missing or unexpected name raises before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import ClauseElement
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler

from docgate.db.errors import invalidate_pool
from docgate.errors import database_unavailable

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


class PreparedQuery:
    """A Core statement compiled for asyncpg once; ``fetch`` binds every parameter by name."""

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            raise TypeError("PreparedQuery takes a SELECT/INSERT/UPDATE/DELETE statement")
        self.sql = str(compiled)
        self._order: tuple[str, ...] = tuple(compiled.positiontup)
        self._names = frozenset(self._order)

    def _args(self, params: Mapping[str, Any]) -> list[Any]:
        if params.keys() != self._names:
            missing = sorted(self._names - params.keys())
            extra = sorted(params.keys() - self._names)
            raise ValueError(f"prepared query parameters: missing {missing}, unexpected {extra}")
        return [params[name] for name in self._order]

    async def fetch(self, conn: AsyncConnection, **params: Any) -> Sequence[asyncpg.Record]:
        args = self._args(params)
        async with _driver(conn) as driver:
            rows: Sequence[asyncpg.Record] = await driver.fetch(self.sql, *args)
        return rows

    async def estimate(self, conn: AsyncConnection, **params: Any) -> int:
        """The planner's row estimate for the statement with these values (EXPLAIN only)."""
        args = self._args(params)
        async with _driver(conn) as driver:
            plan = await driver.fetchval(f"EXPLAIN (FORMAT JSON) {self.sql}", *args)
        # SQLAlchemy's asyncpg dialect installs a json codec; a bare connection returns text.
        document = json.loads(plan) if isinstance(plan, str) else plan
        return int(document[0]["Plan"]["Plan Rows"])

    async def fetchrow(self, conn: AsyncConnection, **params: Any) -> asyncpg.Record | None:
        args = self._args(params)
        async with _driver(conn) as driver:
            row: asyncpg.Record | None = await driver.fetchrow(self.sql, *args)
        return row


async def connection_of(session: AsyncSession) -> AsyncConnection:
    """The connection a docgate session is bound to (the RPC's), for statements run on the
    driver (here): the same connection `session.connection()` returns, without
    the greenlet it spawns to begin the session's own transaction around it."""
    bind = session.bind
    if isinstance(bind, AsyncConnection):
        return bind
    return await session.connection()


def pooled_connection(conn: AsyncConnection) -> PoolProxiedConnection | None:
    """The pooled DBAPI connection under ``conn`` when it is already there, without the
    greenlet that `AsyncConnection.get_raw_connection` spawns for it (one greenlet, its
    frame stack mapped and unmapped, per statement). What this returns is what that call
    would: `Connection.connection` is this same object while it is set; only when it is
    unset (an invalidated connection about to reconnect, which needs IO) does the caller
    take the slow path."""
    sync = conn.sync_connection
    if sync is None or sync._dbapi_connection is None:
        return None
    return sync.connection


async def _join_transaction(raw: PoolProxiedConnection) -> None:
    """Inside a transaction, make sure it has begun at the server before a statement runs on
    the driver. SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement *it*
    executes; a driver-level statement that comes first (the caller's FOR SHARE re-read at the
    start of every write, docgate.repositories.principals.confirm_caller) would otherwise run
    in autocommit, and its locks would end with it. This is what the adapter itself does
    before each of its statements (AsyncAdapt_asyncpg_cursor._prepare_and_execute)."""
    adapter: Any = raw.dbapi_connection
    if adapter._transaction is None and adapter.isolation_level != "autocommit":
        await adapter._start_transaction()


@asynccontextmanager
async def _driver(conn: AsyncConnection) -> AsyncIterator[asyncpg.Connection]:
    """The asyncpg connection under ``conn`` (inside its transaction, if one is open).

    SQLAlchemy's own execution notices a dead connection and invalidates the pool; statements
    run on the driver directly must do the same, or the dead connection would go back to the
    pool and fail the next call too. Like SQLAlchemy, a disconnect marks every connection
    opened before it for replacement at its next checkout (one call pays for a database
    restart, not one per pooled connection).
    """
    raw = pooled_connection(conn) or await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    try:
        await _join_transaction(raw)
        yield driver
    except Exception as exc:
        if not driver.is_closed():
            raise
        invalidate_pool(conn, raw, exc)
        raise database_unavailable() from exc
