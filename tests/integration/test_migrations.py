"""Migrations own the schema: upgrade → downgrade base → upgrade, and models agree (alembic
check), on a database of the test's own."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from docgate.db import migrations

TABLES = {
    "users", "roles", "user_roles", "documents", "configurations", "role_configurations",
    "projects", "feedback", "templates", "audit_entries",
}  # fmt: skip


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(make_url(url).render_as_string(hide_password=False))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows} - {"alembic_version"}
    finally:
        await conn.close()


async def test_round_trip_and_check(scratch_database_url: str) -> None:
    url = scratch_database_url
    head = await migrations.upgrade(url)
    assert head is not None
    assert await _tables(url) == TABLES
    await migrations.check(url)
    assert await migrations.downgrade(url, "base") is None
    assert await _tables(url) == set()
    assert await migrations.upgrade(url) == head
    await migrations.check(url)


# What a revision leaves behind, as PostgreSQL reports it: columns (in order, with types,
# defaults and nullability), constraints and indexes with their definitions, enum types with
# their labels. alembic check compares less (no CHECK constraints, no partial-index predicates,
# no enum labels), so downgrades are compared on this.
_SHAPE = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
        ORDER BY 1, 2""",
    "enums": """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname ORDER BY 1""",
}


async def _shape(url: str) -> dict[str, list[tuple[object, ...]]]:
    conn = await asyncpg.connect(make_url(url).render_as_string(hide_password=False))
    try:
        rows = {k: await conn.fetch(sql) for k, sql in _SHAPE.items()}
    finally:
        await conn.close()
    return {k: [tuple(r) for r in v if r[0] != "alembic_version"] for k, v in rows.items()}


async def test_each_downgrade_restores_the_previous_shape(scratch_database_url: str) -> None:
    url = scratch_database_url
    revisions = ["0001", "0002", "0003"]
    shapes = []
    for revision in revisions:
        await migrations.upgrade(url, revision)
        shapes.append(await _shape(url))
    for revision, shape in zip(reversed(revisions[:-1]), reversed(shapes[:-1]), strict=True):
        assert await migrations.downgrade(url, revision) == revision
        assert await _shape(url) == shape, revision
    await migrations.downgrade(url, "base")
    assert await _shape(url) == {"columns": [], "constraints": [], "indexes": [], "enums": []}


async def test_checks_and_partial_indexes_match_the_models(database_url: str) -> None:
    """What alembic check does not compare: CHECK constraint names, partial-index predicates."""
    from sqlalchemy import CheckConstraint

    from docgate.db.models import Base

    expected_checks = {
        (table.name, str(c.name))
        for table in Base.metadata.tables.values()
        for c in table.constraints
        if isinstance(c, CheckConstraint)
    }
    expected_partial = {
        (table.name, str(index.name))
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index.dialect_options["postgresql"]["where"] is not None
    }
    shape = await _shape(database_url)
    checks = {(t, n) for t, n, d in shape["constraints"] if str(d).startswith("CHECK")}
    partial = {(t, n) for t, n, d in shape["indexes"] if " WHERE " in str(d)}
    assert checks == expected_checks
    assert partial == expected_partial


async def test_builtin_roles_are_seeded(database_url: str) -> None:
    conn = await asyncpg.connect(make_url(database_url).render_as_string(hide_password=False))
    try:
        rows = await conn.fetch("SELECT name FROM roles WHERE is_builtin ORDER BY name")
    finally:
        await conn.close()
    assert [r["name"] for r in rows] == ["admin", "free_user", "paid_user"]


@pytest.mark.parametrize("column", ["is_deleted", "is_public", "requires_paid_access"])
async def test_document_flags_cannot_be_null(database_url: str, column: str) -> None:
    conn = await asyncpg.connect(make_url(database_url).render_as_string(hide_password=False))
    try:
        owner = await conn.fetchval(
            "INSERT INTO users (username, email) "
            "VALUES ($1::text, $1::text || '@x.io') RETURNING id",
            f"nulltest_{column}",
        )
        with pytest.raises(asyncpg.NotNullViolationError):
            await conn.execute(
                f"INSERT INTO documents (title, owner_id, {column}) VALUES ('t', $1, NULL)", owner
            )
    finally:
        await conn.close()
