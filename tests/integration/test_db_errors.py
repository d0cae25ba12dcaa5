"""The database boundary (docgate.db.errors): real constraint violations, timeouts and driver
errors leave the unit of work as domain errors naming the right resource."""

from __future__ import annotations

import inspect
import uuid

import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.pool import Pool

from docgate.bootstrap import App
from docgate.db.models import Document, Role, User, UserRole
from docgate.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    NotFound,
    Unavailable,
)
from docgate.principal import SYSTEM
from docgate.repositories.users import UserRepository
from tests.support import make_user, unique


async def test_unique_violation_is_already_exists_by_constraint(app: App) -> None:
    name = unique()
    async with app.uow.transaction(SYSTEM) as session:
        await UserRepository(session).create(name, f"{name}@example.com", [])
    with pytest.raises(AlreadyExists) as caught:
        async with app.uow.transaction(SYSTEM) as session:
            await UserRepository(session).create(name, f"other-{name}@example.com", [])
    assert caught.value.reason == "USER_EXISTS"


async def test_foreign_key_to_a_missing_row_is_not_found(app: App) -> None:
    with pytest.raises(NotFound) as caught:
        async with app.uow.transaction(SYSTEM) as session:
            admin = await session.scalar(select(Role.id).where(Role.name == "admin"))
            await session.execute(insert(UserRole).values(user_id=uuid.uuid4(), role_id=admin))
    assert caught.value.reason == "USER_NOT_FOUND"


async def test_foreign_key_still_referenced_is_failed_precondition(app: App) -> None:
    owner = await make_user(app, "free_user")
    async with app.uow.transaction(SYSTEM) as session:
        await session.execute(insert(Document).values(title="kept", owner_id=owner.id))
    with pytest.raises(FailedPrecondition) as caught:
        async with app.uow.transaction(SYSTEM) as session:
            await session.execute(delete(User).where(User.id == owner.id))
    assert caught.value.reason == "USER_OWNS_DOCUMENTS"
    async with app.uow.read(SYSTEM) as session:  # rolled back: the user is still there
        assert await session.scalar(select(User.id).where(User.id == owner.id)) == owner.id


@pytest.mark.parametrize("path", ["orm", "driver"])
async def test_statement_timeout_is_deadline_exceeded(app: App, path: str) -> None:
    with pytest.raises(DeadlineExceeded) as caught:
        async with app.uow.transaction(SYSTEM) as session:
            await session.execute(text("SET LOCAL statement_timeout = 50"))
            if path == "orm":
                await session.execute(text("SELECT pg_sleep(5)"))
            else:  # the prepared hot path runs on asyncpg directly
                raw = await (await session.connection()).get_raw_connection()
                await raw.driver_connection.fetch("SELECT pg_sleep(5)")  # type: ignore[union-attr]
    assert caught.value.reason == "STATEMENT_TIMEOUT"


async def test_lost_connection_is_unavailable(app: App) -> None:
    with pytest.raises(Unavailable) as caught:
        async with app.uow.read(SYSTEM) as session:
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
    assert caught.value.reason == "DATABASE_UNAVAILABLE"


def test_the_private_pool_invalidate_docgate_relies_on_still_exists() -> None:
    """docgate.db.errors.invalidate_pool calls Pool._invalidate(connection, exception): if a
    SQLAlchemy upgrade renames or reshapes it, fail here, loudly, not in production."""
    invalidate = getattr(Pool, "_invalidate", None)
    assert callable(invalidate), "SQLAlchemy removed Pool._invalidate: see docgate.db.errors"
    parameters = list(inspect.signature(invalidate).parameters)
    assert parameters[:3] == ["self", "connection", "exception"], parameters
