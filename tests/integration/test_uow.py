"""Unit of work: one transaction per block, committed once, rolled back on any exception;
repositories hand back protobuf messages."""

from __future__ import annotations

import pytest
from docgate.v1 import users_pb2
from sqlalchemy import select

from docgate.bootstrap import App
from docgate.db.models import User
from docgate.errors import AlreadyExists, NotFound
from docgate.principal import SYSTEM, acting_as
from docgate.repositories.users import UserRepository
from tests.support import pool_drained, unique


async def _exists(app: App, username: str) -> bool:
    with acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            found = await session.scalar(select(User.id).where(User.username == username))
    return found is not None


async def test_commit_on_success_returns_protobuf(app: App) -> None:
    name = unique()
    with acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            user = await UserRepository(session).create(name, f"{name}@x.io", ["paid_user"])
    assert isinstance(user, users_pb2.User)
    assert list(user.roles) == ["paid_user"]
    assert await _exists(app, name)


async def test_rollback_on_error(app: App) -> None:
    name = unique()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            await UserRepository(session).create(name, f"{name}@x.io", [])
            raise Boom
    assert not await _exists(app, name)
    assert await pool_drained(app)


async def test_duplicate_username_is_already_exists_and_keeps_nothing(app: App) -> None:
    name = unique()
    with acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            await UserRepository(session).create(name, f"{name}@x.io", [])
        with pytest.raises(AlreadyExists):
            async with app.uow.transaction() as session:
                await UserRepository(session).create(name, f"other-{name}@x.io", [])


async def test_unknown_role_is_not_found_and_creates_nothing(app: App) -> None:
    name = unique()
    with pytest.raises(NotFound), acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            await UserRepository(session).create(name, f"{name}@x.io", ["no_such_role"])
    assert not await _exists(app, name)
