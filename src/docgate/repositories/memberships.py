"""Role membership (user_roles) and the guard that keeps at least one active admin."""

from __future__ import annotations

import uuid

from sqlalchemy import UUID, delete, exists, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination
from docgate.db import audit
from docgate.db.models import Role, User, UserRole
from docgate.db.uow import page_tokens
from docgate.errors import FailedPrecondition, user_not_found
from docgate.pagination import KeyKind, Keyset
from docgate.principal import ADMIN
from docgate.repositories.roles import role_id
from docgate.v1 import roles_pb2

_BY_USER_ID = Keyset((KeyKind.UUID,))
# Any fixed bigint: the one advisory lock every "could remove the last admin" change takes.
ADMIN_GUARD_LOCK = 0x646F_6367_6164_6D6E  # "docgadmn"


async def require_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    if not await session.scalar(select(exists().where(User.id == user_id))):
        raise user_not_found(user_id)


async def guard_last_admin(session: AsyncSession, user_id: uuid.UUID) -> None:
    """FAILED_PRECONDITION if ``user_id`` is the only active admin.

    Call it *before* revoking admin from, deactivating or deleting ``user_id``. The
    transaction-scoped advisory lock serialises such changes: the second of two racing calls
    waits until the first commits and then (READ COMMITTED: a fresh snapshot per statement)
    counts the admins that are left.
    """
    await session.execute(select(func.pg_advisory_xact_lock(ADMIN_GUARD_LOCK)))
    active_admins = (
        select(User.id)
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(Role.name == ADMIN, User.is_active.is_(True))
        .limit(2)
    )
    if list(await session.scalars(active_admins)) == [user_id]:
        raise FailedPrecondition(
            "this would leave no active admin",
            reason="LAST_ADMIN",
            metadata={"user_id": str(user_id)},
        )


class MembershipRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def assign(self, user_id: uuid.UUID, role: str) -> roles_pb2.RoleMembership:
        """Idempotent: ON CONFLICT DO NOTHING, so racing duplicates leave one row."""
        audit.note(self._session, f"users/{user_id}/roles/{role}")
        rid = await role_id(self._session, role)
        stmt = (
            pg_insert(UserRole)
            .from_select(
                ["user_id", "role_id"],
                select(User.id, literal(rid, UUID)).where(User.id == user_id),
            )
            .on_conflict_do_nothing(index_elements=[UserRole.user_id, UserRole.role_id])
        )
        # A user deleted meanwhile fails the foreign key: NOT_FOUND (docgate.db.errors).
        await self._session.execute(stmt)
        assigned_at = await self._session.scalar(
            select(UserRole.assigned_at).where(UserRole.user_id == user_id, UserRole.role_id == rid)
        )
        if assigned_at is None:
            raise user_not_found(user_id)
        return mapping.membership(user_id=user_id, role=role, assigned_at=assigned_at)

    async def revoke(self, user_id: uuid.UUID, role: str) -> None:
        """Idempotent; refuses to take admin from the last active admin."""
        audit.note(self._session, f"users/{user_id}/roles/{role}")
        rid = await role_id(self._session, role)
        await require_user(self._session, user_id)
        if role == ADMIN:
            await guard_last_admin(self._session, user_id)
        await self._session.execute(
            delete(UserRole).where(UserRole.user_id == user_id, UserRole.role_id == rid)
        )

    async def list_for_user(self, user_id: uuid.UUID) -> roles_pb2.ListUserRolesResponse:
        await require_user(self._session, user_id)
        stmt = (
            select(UserRole.user_id, Role.name.label("role"), UserRole.assigned_at)
            .join(Role, Role.id == UserRole.role_id)
            .where(UserRole.user_id == user_id)
            .order_by(Role.name)
        )
        rows = (await self._session.execute(stmt)).all()
        return roles_pb2.ListUserRolesResponse(
            memberships=[mapping.membership(**row._asdict()) for row in rows]
        )

    async def list_members(
        self, role: str, page_size: int, page_token: str
    ) -> roles_pb2.ListRoleMembersResponse:
        rid = await role_id(self._session, role)
        bound_to = pagination.fingerprint("role_members", role)
        stmt = select(UserRole.user_id, UserRole.assigned_at).where(UserRole.role_id == rid)
        stmt = _BY_USER_ID.select(
            page_tokens(self._session), stmt, [UserRole.user_id], page_token, bound_to, page_size
        )
        rows = (await self._session.execute(stmt)).all()
        kept, next_token = _BY_USER_ID.page(
            page_tokens(self._session), rows, page_size, bound_to, lambda r: (r.user_id,)
        )
        return roles_pb2.ListRoleMembersResponse(
            memberships=[
                mapping.membership(user_id=row.user_id, role=role, assigned_at=row.assigned_at)
                for row in kept
            ],
            next_page_token=next_token,
        )

    async def has_role(self, user_id: uuid.UUID, role: str) -> bool:
        rid = await role_id(self._session, role)
        await require_user(self._session, user_id)
        held = exists().where(UserRole.user_id == user_id, UserRole.role_id == rid)
        return bool(await self._session.scalar(select(held)))
