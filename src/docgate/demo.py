"""Demo data for dev mode: three users, one per built-in role, and documents covering every
flag combination. Seeded once, on the first start of an empty embedded database."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from docgate.db.models import Document, User
from docgate.repositories.users import UserRepository

DEMO_USERS = (("alice", "admin"), ("bob", "paid_user"), ("carol", "free_user"))


async def seed_if_empty(session: AsyncSession) -> bool:
    """Seed when there are no users yet; return whether it did."""
    if await session.scalar(select(func.count()).select_from(User)):
        return False
    repo = UserRepository(session)
    owners: list[tuple[str, uuid.UUID]] = []
    for name, role in DEMO_USERS:
        user = await repo.create(name, f"{name}@example.com", [role])
        owners.append((name, uuid.UUID(user.id)))
    now = datetime.now(UTC)
    rows = []
    for (name, owner), (public, paid, deleted) in itertools.product(
        owners, itertools.product((False, True), repeat=3)
    ):
        flags = ", ".join(
            word for word, on in (("public", public), ("paid", paid), ("deleted", deleted)) if on
        )
        rows.append(
            {
                "title": f"{name}'s {flags or 'private'} note",
                "content": f"A demo document: {flags or 'private, free, live'}.",
                "owner_id": owner,
                "is_public": public,
                "requires_paid_access": paid,
                "is_deleted": deleted,
                "delete_time": now if deleted else None,
            }
        )
    await session.execute(insert(Document), rows)
    return True
