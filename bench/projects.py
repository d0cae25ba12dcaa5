"""The benchmark's projects: grown in SQL to a size, with feedback, and the ids each caller sees."""

from __future__ import annotations

import time

import asyncpg

from bench.database import (
    REBUILD_INDEXES_FROM,
    Caller,
    drop_secondary_indexes,
    sample_ids,
)

# Feedback rows per project; their count and average are what GetProject/ListProjects compute.
FEEDBACK_PER_PROJECT = 10

# One statement for the projects and their feedback. Owners cycle over every bench user
# (callers own some too); states 60% ACTIVE, 20% COMPLETED, 10% DRAFT, 10% ARCHIVED (archived
# from one of the other three, as the CHECK constraints want); create_time spread over a year.
# Feedback: authors at random, create_time after the project's; 80% scored 1..5, the rest
# comments, and every 20th project comments only (so average_score is unset there). The
# feedback is inserted round by round (every project's first item, then every second one...),
# so one project's rows lie far apart in the heap, as when feedback arrives over time.
_INSERT_PROJECTS = """
WITH bench_users AS (
  SELECT id, row_number() OVER (ORDER BY username) - 1 AS n FROM users
  WHERE username LIKE 'bench\\_%'
),
new AS (
  INSERT INTO projects (name, description, owner_id, state, archived_from,
                        create_time, update_time, version)
  SELECT 'Project ' || p.i,
         repeat('project notes ', 1 + p.i % 8),
         u.id,
         (CASE WHEN p.r < 0.6 THEN 'active' WHEN p.r < 0.8 THEN 'completed'
               WHEN p.r < 0.9 THEN 'draft' ELSE 'archived' END)::project_state,
         (CASE WHEN p.r >= 0.9
               THEN (ARRAY['draft', 'active', 'completed'])[1 + p.i % 3] END)::project_state,
         p.created, p.created + interval '1 hour', 1 + p.i % 4
  FROM (SELECT i, random() AS r, now() - random() * interval '365 days' AS created
        FROM generate_series($1::int, $2::int) AS i) p
  JOIN bench_users u ON u.n = p.i % (SELECT count(*) FROM bench_users)
  RETURNING id, create_time, substr(name, 9)::int % 20 = 0 AS comments_only
)
INSERT INTO feedback (project_id, author_id, content, score, create_time)
SELECT f.id, u.id,
       'Feedback ' || f.k || ': ' || repeat('looks good ', 1 + f.k % 5),
       CASE WHEN NOT f.comments_only AND random() < 0.8
            THEN 1 + floor(random() * 5)::float8 END,
       f.create_time + random() * (now() - f.create_time)
FROM (SELECT new.*, k, floor(random() * (SELECT count(*) FROM bench_users))::int AS author
      FROM new, generate_series(1, $3::int) AS k) f
JOIN bench_users u ON u.n = f.author
ORDER BY f.k
"""


async def seed_projects(conn: asyncpg.Connection, total: int) -> float:
    """Grow the projects table to ``total`` rows, each with its feedback; returns the seconds
    it took. Large batches rebuild the secondary indexes afterwards, as for documents."""
    started = time.perf_counter()
    have = await conn.fetchval("SELECT count(*) FROM projects")
    if total <= have:
        return 0.0
    await conn.execute("SET maintenance_work_mem = '256MB'")
    await conn.execute("SET work_mem = '256MB'")
    rebuild = total - have >= REBUILD_INDEXES_FROM // FEEDBACK_PER_PROJECT
    async with conn.transaction():
        # Every reference is valid by construction (projects of this statement, bench users):
        # skipping the per-row foreign-key triggers halves the time of a million rows.
        await conn.execute("SET LOCAL session_replication_role = replica")
        indexes = []
        if rebuild:
            for table in ("projects", "feedback"):
                indexes += await drop_secondary_indexes(conn, table)
        await conn.execute(_INSERT_PROJECTS, have + 1, total, FEEDBACK_PER_PROJECT, timeout=900)
        for definition in indexes:
            await conn.execute(definition, timeout=900)
    for table in ("projects", "feedback"):
        await conn.execute(f"VACUUM ANALYZE {table}", timeout=900)
    return time.perf_counter() - started


# docgate.policy's project rule: admins all, the owner their own, others ACTIVE and COMPLETED.
_SAMPLE_SQL = """
SELECT id::text FROM projects TABLESAMPLE BERNOULLI ($3)
WHERE $2 OR owner_id = $1::uuid OR state IN ('active', 'completed')
"""


async def visible_projects(conn: asyncpg.Connection, caller: Caller) -> list[str]:
    """Random ids of projects ``caller`` may see, spread over the whole table."""
    return await sample_ids(conn, "projects", _SAMPLE_SQL, caller, caller.role == "admin")
