"""The benchmark's database: a fresh embedded PostgreSQL, migrated by docgate, seeded in SQL."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from docgate.db.embedded import ensure_database, start_embedded
from docgate.db.migrations import upgrade

DATABASE = "docgate_bench"
# Owners of the seeded documents besides the callers; each gets a role like real users do.
OWNER_COUNT = 1000
# Who calls: a realistic mix, free users most often.
CALLER_ROLES = ("free_user", "free_user", "free_user", "paid_user", "paid_user", "admin")
# How many visible document ids each caller cycles through in GetDocument.
TARGETS_PER_CALLER = 2000
# Seeding this many rows or more at once rebuilds the secondary indexes afterwards.
REBUILD_INDEXES_FROM = 100_000


@dataclass(frozen=True)
class Caller:
    user_id: str
    username: str
    role: str


async def create_database(data_dir: Path) -> str:
    """Start PostgreSQL under ``data_dir`` (deleted on exit), create and migrate the database."""
    server_url = start_embedded(data_dir, delete_on_exit=True)
    url = await ensure_database(server_url, DATABASE)
    await upgrade(url)
    return url


_INSERT_USERS = """
INSERT INTO users (username, email)
SELECT 'bench_' || $1 || '_' || i, 'bench_' || $1 || '_' || i || '@bench.invalid'
FROM generate_series(1, $2) AS i
RETURNING id::text, username
"""

_GRANT_ROLE = """
INSERT INTO user_roles (user_id, role_id)
SELECT u.id, r.id FROM users u, roles r WHERE u.id = ANY($1::uuid[]) AND r.name = $2
"""


async def seed_users(conn: asyncpg.Connection) -> list[Caller]:
    """Owners (two thirds free, one third paid) and the callers; returns the callers."""
    owners = await conn.fetch(_INSERT_USERS, "owner", OWNER_COUNT)
    ids = [row["id"] for row in owners]
    cut = 2 * len(ids) // 3
    await conn.execute(_GRANT_ROLE, ids[:cut], "free_user")
    await conn.execute(_GRANT_ROLE, ids[cut:], "paid_user")
    rows = await conn.fetch(_INSERT_USERS, "caller", len(CALLER_ROLES))
    callers = [
        Caller(row["id"], row["username"], role)
        for row, role in zip(rows, CALLER_ROLES, strict=True)
    ]
    for caller in callers:
        await conn.execute(_GRANT_ROLE, [caller.user_id], caller.role)
    return callers


# One statement, no round trips: owners cycle over every bench user (callers own some too);
# 5% deleted, 60% public, 30% paid-only, create_time spread over a year, content 40..480 chars.
_INSERT_DOCUMENTS = """
WITH owners AS (SELECT array_agg(id ORDER BY username) AS ids, count(*) AS n FROM users
                WHERE username LIKE 'bench\\_%')
INSERT INTO documents (title, content, owner_id, is_deleted, is_public, requires_paid_access,
                       create_time, update_time, delete_time)
SELECT 'Document ' || d.i,
       repeat('lorem ipsum dolor sit amet consectetur ', 1 + d.i % 12),
       o.ids[1 + d.i % o.n],
       d.deleted, random() < 0.6, random() < 0.3,
       d.created, d.created + interval '1 hour',
       CASE WHEN d.deleted THEN d.created + interval '2 hours' END
FROM owners o,
     LATERAL (SELECT i, random() < 0.05 AS deleted,
                     now() - random() * interval '365 days' AS created
              FROM generate_series($1::int, $2::int) AS i) d
"""


async def seed_documents(conn: asyncpg.Connection, total: int) -> float:
    """Grow the documents table to ``total`` rows; returns the seconds it took.

    Large batches drop the secondary indexes and rebuild them afterwards (a sorted build beats
    a million random inserts into six indexes); the definitions come from the catalog, so this
    follows whatever the migrations created.
    """
    started = time.perf_counter()
    have = await conn.fetchval("SELECT count(*) FROM documents")
    if total <= have:
        return 0.0
    await conn.execute("SET maintenance_work_mem = '256MB'")
    rebuild = total - have >= REBUILD_INDEXES_FROM
    async with conn.transaction():
        indexes = await drop_secondary_indexes(conn, "documents") if rebuild else []
        await conn.execute(_INSERT_DOCUMENTS, have + 1, total, timeout=900)
        for definition in indexes:
            await conn.execute(definition, timeout=900)
    for table in ("documents", "users", "user_roles", "roles"):
        # VACUUM sets hint bits and the visibility map now, so no measured round pays for them.
        await conn.execute(f"VACUUM ANALYZE {table}", timeout=900)
    return time.perf_counter() - started


_SECONDARY_INDEXES = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
WHERE i.indrelid = $1::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


async def seed(
    url: str, docs: int, *, analyze: bool = False
) -> tuple[list[Caller], list[list[str]]]:
    """Seed the owners, the callers and ``docs`` documents at ``url`` (``analyze``: then VACUUM
    ANALYZE); returns the callers and, per caller, the document ids it may read."""
    conn = await asyncpg.connect(url)
    try:
        callers = await seed_users(conn)
        await seed_documents(conn, docs)
        if analyze:
            await conn.execute("VACUUM ANALYZE")
        targets = [await visible_targets(conn, caller) for caller in callers]
    finally:
        await conn.close()
    return callers, targets


async def drop_secondary_indexes(conn: asyncpg.Connection, table: str) -> list[str]:
    """Drop ``table``'s indexes that back no constraint; returns their definitions."""
    rows = await conn.fetch(_SECONDARY_INDEXES, table)
    for row in rows:
        await conn.execute(f"DROP INDEX {row['name']}")
    return [row["definition"] for row in rows]


_SAMPLE_SQL = """
SELECT id::text FROM documents TABLESAMPLE BERNOULLI ($4)
WHERE NOT is_deleted AND ($2 OR owner_id = $1::uuid
      OR (is_public AND ($3 OR NOT requires_paid_access)))
"""


async def visible_targets(conn: asyncpg.Connection, caller: Caller) -> list[str]:
    """Random ids of documents ``caller`` may see, spread over the whole table."""
    admin = caller.role == "admin"
    paid = caller.role == "paid_user"
    return await sample_ids(conn, "documents", _SAMPLE_SQL, caller, admin, paid)


async def sample_ids(
    conn: asyncpg.Connection, table: str, sql: str, caller: Caller, *flags: bool
) -> list[str]:
    """Up to TARGETS_PER_CALLER random ids from ``sql``, a TABLESAMPLE of ``table`` that takes
    the caller's id, ``flags`` and the sample percentage as its parameters, in that order."""
    total = await conn.fetchval(f"SELECT count(*) FROM {table}")
    percent = min(100.0, 100.0 * 2 * TARGETS_PER_CALLER / max(1, total))
    ids: list[str] = []
    for _ in range(50):
        if len(ids) >= TARGETS_PER_CALLER:
            break
        rows = await conn.fetch(sql, caller.user_id, *flags, percent)
        ids.extend(row["id"] for row in rows)
    unique = list(dict.fromkeys(ids))
    random.Random(caller.user_id).shuffle(unique)
    return unique[:TARGETS_PER_CALLER]


def new_secret() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex
