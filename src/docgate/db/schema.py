"""Is the database fit to serve? The health check's one query.

A server that answered while its tables were gone (a `migrate downgrade` under it) would refuse
every caller with some misleading error; health must say NOT_SERVING instead, and the log must
say why. Reading ``alembic_version`` answers both questions at the cost of the ``SELECT 1`` it
replaces: it fails when the database is unreachable or the schema was never created, and
otherwise names the revision to compare with the heads this build was written for (computed
once, at start: docgate.db.migrations.heads).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from docgate.db.errors import sqlstate, translate

_UNDEFINED_TABLE = "42P01"
_NO_SCHEMA = "the database has no docgate schema (run `docgate migrate upgrade`)"
_VERSION = text("SELECT version_num FROM alembic_version")


async def schema_problem(engine: AsyncEngine, heads: frozenset[str], seconds: float) -> str | None:
    """None while the database answers within ``seconds`` and is at ``heads``; else, in words
    for the log, why not."""
    try:
        async with asyncio.timeout(seconds), engine.connect() as conn:
            found = frozenset((await conn.execute(_VERSION)).scalars())
    except TimeoutError:
        return f"the database did not answer within {seconds:g}s"
    except Exception as exc:  # any failure means "not serving"; the reason goes to the log
        if sqlstate(exc) == _UNDEFINED_TABLE:
            return _NO_SCHEMA
        known = translate(exc)
        return f"the database is unreachable ({known.message if known else type(exc).__name__})"
    if not found:  # downgraded to base: alembic_version stays, empty
        return _NO_SCHEMA
    if found != heads:
        return (
            f"the database schema is at {', '.join(sorted(found))}, this build expects "
            f"{', '.join(sorted(heads))} (run `docgate migrate upgrade`)"
        )
    return None
