"""Users: who they are and which roles they hold."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, String, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping
from docgate.auth.principal import Principal
from docgate.db.models import Role, User, UserRole
from docgate.errors import AlreadyExists, NotFound
from docgate.repositories.roles import role_ids
from docgate.v1 import users_pb2

USER_NOT_FOUND = "user not found"


def role_names() -> ColumnElement[Any]:
    """Sorted role names of the User row in the same statement (outer-joined roles)."""
    agg = func.array_agg(aggregate_order_by(Role.name, Role.name))
    return func.array_remove(agg, None, type_=ARRAY(String)).label("roles")


def users_with_roles() -> Select[uuid.UUID, str, str, bool, datetime, datetime, Any]:
    return (
        select(
            User.id,
            User.username,
            User.email,
            User.is_active,
            User.create_time,
            User.update_time,
            role_names(),
        )
        .outerjoin(UserRole, UserRole.user_id == User.id)
        .outerjoin(Role, Role.id == UserRole.role_id)
        .group_by(User.id)
    )


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def principal(self, user_id: uuid.UUID) -> Principal | None:
        """The active user ``user_id`` as a Principal, or None (unknown or inactive)."""
        stmt = (
            select(User.username, role_names())
            .outerjoin(UserRole, UserRole.user_id == User.id)
            .outerjoin(Role, Role.id == UserRole.role_id)
            .where(User.id == user_id, User.is_active.is_(True))
            .group_by(User.id)
        )
        row = (await self._session.execute(stmt)).one_or_none()
        if row is None:
            return None
        return Principal(user_id=user_id, username=row.username, roles=frozenset(row.roles))

    async def get(self, user_id: uuid.UUID) -> users_pb2.User:
        row = (await self._session.execute(users_with_roles().where(User.id == user_id))).first()
        if row is None:
            raise NotFound(USER_NOT_FOUND, reason="USER_NOT_FOUND")
        return mapping.user(**row._asdict())

    async def create(self, username: str, email: str, roles: list[str]) -> users_pb2.User:
        """Insert a user with ``roles`` (names; unknown ones are NOT_FOUND)."""
        ids = await role_ids(self._session, roles)
        try:
            async with self._session.begin_nested():
                user_id = await self._session.scalar(
                    insert(User).values(username=username, email=email).returning(User.id)
                )
        except IntegrityError as exc:
            raise AlreadyExists(
                "a user with that username or email already exists", reason="USER_EXISTS"
            ) from exc
        assert user_id is not None
        if ids:
            await self._session.execute(
                insert(UserRole), [{"user_id": user_id, "role_id": rid} for rid in ids]
            )
        return await self.get(user_id)

    async def find_id(self, id_or_username: str) -> uuid.UUID:
        """Resolve a user id or username (CLI convenience)."""
        try:
            condition = User.id == uuid.UUID(id_or_username)
        except ValueError:
            condition = User.username == id_or_username
        user_id = await self._session.scalar(select(User.id).where(condition))
        if user_id is None:
            raise NotFound(USER_NOT_FOUND, reason="USER_NOT_FOUND")
        return user_id
