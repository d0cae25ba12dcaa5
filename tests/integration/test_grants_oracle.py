"""ListMyConfigurations against a plain-Python oracle over random grants.

Everything happens in one transaction, so the database's now() is one fixed instant that the
oracle reads too; expiries are placed before, exactly at and after it."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from sqlalchemy import text

from docgate.bootstrap import App
from docgate.repositories.grants import GrantRepository
from tests.support import make_user, unique

OFFSETS = [None, None, -60.0, -0.000001, 0.0, 0.000001, 60.0, 3600.0]


def _oracle(
    grants: list[tuple[int, int, int, float | None]], held: set[int], now: datetime
) -> dict[int, tuple[int, datetime | None]]:
    """config → (max level, when that level ends) over unexpired grants of held roles: the
    latest expiry among the grants that give the max level, None when one of them is
    permanent (issue 11 finding 15)."""
    live: dict[int, list[tuple[int, datetime | None]]] = {}
    for role, config, level, offset in grants:
        expires = None if offset is None else now + timedelta(seconds=offset)
        if role in held and (expires is None or expires > now):
            live.setdefault(config, []).append((level, expires))
    result = {}
    for config, entries in live.items():
        top = max(level for level, _ in entries)
        ends = [e for level, e in entries if level == top]
        result[config] = (top, None if None in ends else max(e for e in ends if e is not None))
    return result


async def test_reachable_configurations_match_the_oracle(app: App) -> None:
    rng = random.Random(4)
    for _ in range(15):
        user = await make_user(app)
        async with app.uow.transaction() as session:
            now = (await session.execute(text("select now()"))).scalar_one()
            role_ids = [
                await session.scalar(
                    text("insert into roles (name) values (:n) returning id"), {"n": unique("r")}
                )
                for _ in range(3)
            ]
            config_ids = [
                await session.scalar(
                    text("insert into configurations (name) values (:n) returning id"),
                    {"n": unique("c")},
                )
                for _ in range(4)
            ]
            held = set(rng.sample(range(3), rng.randint(0, 3)))
            for role in held:
                await session.execute(
                    text("insert into user_roles (user_id, role_id) values (:u, :r)"),
                    {"u": user.id, "r": role_ids[role]},
                )
            pairs = rng.sample([(r, c) for r in range(3) for c in range(4)], rng.randint(0, 12))
            grants = [(r, c, rng.randint(1, 5), rng.choice(OFFSETS)) for r, c in pairs]
            for role, config, level, offset in grants:
                await session.execute(
                    text(
                        "insert into role_configurations "
                        "(role_id, configuration_id, access_level, expires_at) "
                        "values (:r, :c, :l, now() + make_interval(secs => :s))"
                        if offset is not None
                        else "insert into role_configurations "
                        "(role_id, configuration_id, access_level) values (:r, :c, :l)"
                    ),
                    {"r": role_ids[role], "c": config_ids[config], "l": level, "s": offset},
                )
            reply = await GrantRepository(session).reachable_by(user.id)
            await session.rollback()
        got = {
            config_ids.index(uuid.UUID(c.configuration.id)): (
                c.access_level,
                c.expire_time.ToDatetime(tzinfo=now.tzinfo) if c.HasField("expire_time") else None,
            )
            for c in reply.configurations
        }
        assert got == _oracle(grants, held, now)
