"""The caller's identity, read once per RPC by the auth interceptor.

This is the hottest query docgate runs (every authenticated call), so the statement is built
once and executed as Core on the RPC's connection: no ORM entity loading, no per-call
statement construction. The users table carries no row policy, so nothing is bypassed.
"""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from docgate.db.models import Role, User, UserRole
from docgate.db.prepared import PreparedQuery
from docgate.principal import Principal
from docgate.repositories.users import role_names

_ACTIVE_USER_WITH_ROLES = PreparedQuery(
    select(User.username, role_names())
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .outerjoin(Role, Role.id == UserRole.role_id)
    .where(User.id == bindparam("user_id"), User.is_active.is_(True))
    .group_by(User.id)
)


async def load_principal(conn: AsyncConnection, user_id: uuid.UUID) -> Principal | None:
    """The active user ``user_id`` as a Principal, or None (unknown or deactivated)."""
    row = await _ACTIVE_USER_WITH_ROLES.fetchrow(conn, user_id=user_id)
    if row is None:
        return None
    return Principal(user_id=user_id, username=row["username"], roles=frozenset(row["roles"]))
