"""The caller's identity, read once per RPC by the auth interceptor, and confirmed again at the
end of every write transaction (`confirm_caller`).

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
from docgate.errors import Aborted
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


_STILL_ACTIVE = PreparedQuery(
    select(User.is_active).where(User.id == bindparam("user_id")).with_for_update(read=True)
)
_HELD_ROLES = PreparedQuery(
    select(Role.name)
    .join(UserRole, UserRole.role_id == Role.id)
    .where(UserRole.user_id == bindparam("user_id"))
    .with_for_update(read=True, of=UserRole)
)


async def confirm_caller(conn: AsyncConnection, principal: Principal) -> None:
    """At the start of a write transaction: the caller is still active and still holds every
    role the call was authorised with; else ABORTED (retry: the next call sees the change at
    the door).

    The caller's roles were read at the door, outside the transaction, so a revocation could
    commit in between. Reading them again here, FOR SHARE, closes that gap both ways: a
    revocation that committed first is seen, and one that comes later waits for this commit
    (two that wait on each other are a deadlock PostgreSQL breaks: ABORTED, retry).
    """
    active = await _STILL_ACTIVE.fetchrow(conn, user_id=principal.user_id)
    held = {row["name"] for row in await _HELD_ROLES.fetch(conn, user_id=principal.user_id)}
    if active is None or not active["is_active"] or not principal.roles <= held:
        raise Aborted(
            "the caller's roles or status changed while the call ran; retry it",
            reason="CALLER_CHANGED",
        )
