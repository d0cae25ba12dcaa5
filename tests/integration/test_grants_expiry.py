"""The expiry boundary, decided in SQL: inside one transaction now() is fixed, so a grant whose
expires_at equals now() is exactly at its boundary (and must already count as expired)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from docgate.bootstrap import App
from docgate.repositories.grants import GrantRepository
from tests.support import make_user, unique


@pytest.mark.parametrize(
    ("expires_at", "reachable"),
    [
        ("now() - interval '1 second'", False),
        ("now()", False),
        ("now() + interval '1 microsecond'", True),
        ("now() + interval '1 second'", True),
        ("null", True),
    ],
)
async def test_grant_is_expired_at_exactly_expires_at(
    app: App, expires_at: str, reachable: bool
) -> None:
    user = await make_user(app)
    async with app.uow.transaction() as session:
        role_id = await session.scalar(
            text("insert into roles (name) values (:n) returning id"), {"n": unique("r")}
        )
        config_id = await session.scalar(
            text("insert into configurations (name) values (:n) returning id"), {"n": unique("c")}
        )
        await session.execute(
            text("insert into user_roles (user_id, role_id) values (:u, :r)"),
            {"u": user.id, "r": role_id},
        )
        await session.execute(
            text(
                "insert into role_configurations (role_id, configuration_id, access_level, "
                f"expires_at) values (:r, :c, 4, {expires_at})"
            ),
            {"r": role_id, "c": config_id},
        )
        reply = await GrantRepository(session).reachable_by(user.id)
        await session.rollback()
    ids = [uuid.UUID(c.configuration.id) for c in reply.configurations]
    assert ids == ([config_id] if reachable else [])
