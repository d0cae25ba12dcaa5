"""Roles, memberships and configuration grants."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from docgate.db.models import Role
from docgate.errors import NotFound

ROLE_NOT_FOUND = "role not found"


async def role_ids(session: AsyncSession, names: Iterable[str]) -> list[uuid.UUID]:
    """Ids of the roles called ``names``; NOT_FOUND naming the first unknown one."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    rows = (await session.execute(select(Role.name, Role.id).where(Role.name.in_(wanted)))).all()
    found = {name: rid for name, rid in rows}
    for name in wanted:
        if name not in found:
            raise NotFound(ROLE_NOT_FOUND, reason="ROLE_NOT_FOUND", metadata={"role": name})
    return [found[name] for name in wanted]
