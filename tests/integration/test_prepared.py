"""Prepared hot-path statements: same rows as SQLAlchemy's own execution, and no bound value can
be carried over from one call to the next."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select

from docgate.bootstrap import App
from docgate.db.models import Role, User
from docgate.db.prepared import PreparedQuery
from docgate.repositories.users import users_with_roles
from tests.support import make_user

BY_ID = users_with_roles().where(User.id == bindparam("user_id"))


async def test_rows_match_sqlalchemy_execution(app: App) -> None:
    user = await make_user(app, "paid_user", "free_user")
    prepared = PreparedQuery(BY_ID)
    async with app.uow.read() as session:
        conn = await session.connection()
        expected = (await conn.execute(BY_ID, {"user_id": user.id})).one()._asdict()
        got = dict(await prepared.fetchrow(conn, user_id=user.id) or {})
    assert got == expected
    assert got["roles"] == ["free_user", "paid_user"]


async def test_every_parameter_must_be_supplied_on_every_call(app: App) -> None:
    # A value bound at build time (here "admin") must not silently apply to a later call.
    prepared = PreparedQuery(select(Role.id).where(Role.name == bindparam("name", "admin")))
    async with app.uow.read() as session:
        conn = await session.connection()
        with pytest.raises(ValueError, match="missing"):
            await prepared.fetchrow(conn)
        with pytest.raises(ValueError, match="unexpected"):
            await prepared.fetchrow(conn, name="admin", other=1)
        assert await prepared.fetchrow(conn, name="no_such_role") is None
        assert await prepared.fetchrow(conn, name="free_user") is not None


async def test_literal_values_become_parameters_too() -> None:
    prepared = PreparedQuery(select(Role.id).where(Role.name == "admin").limit(5))
    assert "admin" not in prepared.sql
    with pytest.raises(ValueError, match="missing"):
        prepared._args({})


async def test_the_driver_is_found_without_a_greenlet(app: App) -> None:
    """A hot-path statement runs on the pooled connection under the session's own, found
    without SQLAlchemy's greenlet bridge; once that connection is invalidated the fast path
    steps aside and the slow one reconnects."""
    import greenlet

    from docgate.db.prepared import connection_of, pooled_connection

    async with app.engine.connect() as conn:
        assert pooled_connection(conn) is await conn.get_raw_connection()
        await conn.invalidate()
        assert pooled_connection(conn) is None

    user = await make_user(app, "free_user")
    prepared = PreparedQuery(BY_ID)
    switches: list[str] = []

    async with app.uow.read() as session:
        conn = await connection_of(session)
        assert conn is session.bind
        await prepared.fetchrow(conn, user_id=user.id)  # the first checkout is not counted
        previous = greenlet.settrace(lambda event, _args: switches.append(event))
        try:
            row = await prepared.fetchrow(await connection_of(session), user_id=user.id)
        finally:
            greenlet.settrace(previous)
    assert row is not None and row["id"] == user.id
    assert switches == []
