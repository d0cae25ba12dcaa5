"""Migrations own the schema: upgrade → downgrade base → upgrade, and models agree (alembic
check), on a database of the test's own."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from docgate.db import migrations

TABLES = {
    "users", "roles", "user_roles", "documents", "configurations", "role_configurations",
    "projects", "feedback", "templates",
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
