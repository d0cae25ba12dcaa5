"""Users: who they are and which roles they hold."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from docgate import mapping, pagination
from docgate.db import audit
from docgate.db.filtering import SHOW_DELETED
from docgate.db.models import Document, Role, User, UserRole
from docgate.db.prepared import PreparedQuery, connection_of
from docgate.db.uow import page_tokens
from docgate.errors import user_not_found, user_owns_documents
from docgate.repositories.memberships import guard_last_admin, require_user
from docgate.repositories.roles import BY_NAME, role_id, role_ids
from docgate.v1 import users_pb2


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


_USER_BY_ID = PreparedQuery(users_with_roles().where(User.id == bindparam("user_id")))


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: uuid.UUID) -> users_pb2.User:
        # GetCurrentUser's query: prepared once (docgate.db.prepared).
        row = await _USER_BY_ID.fetchrow(await connection_of(self._session), user_id=user_id)
        if row is None:
            raise user_not_found(user_id)
        return mapping.user(**dict(row))

    async def create(self, username: str, email: str, roles: list[str]) -> users_pb2.User:
        """Insert a user with ``roles`` (names; unknown ones are NOT_FOUND)."""
        ids = await role_ids(self._session, roles)
        # A taken username or email fails its unique constraint: USER_EXISTS (docgate.db.errors).
        user_id = await self._session.scalar(
            insert(User).values(username=username, email=email).returning(User.id)
        )
        assert user_id is not None
        changes = audit.fields(
            username=(None, username), email=(None, None), roles=(None, ",".join(sorted(roles)))
        )
        audit.note(self._session, f"users/{user_id}", changes)
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
            raise user_not_found(id_or_username)
        return user_id

    async def list_page(
        self,
        page_size: int,
        page_token: str,
        *,
        role: str | None,
        without_roles: bool,
        is_active: bool | None,
    ) -> users_pb2.ListUsersResponse:
        """One statement per page: filters, keyset on username and the role aggregate."""
        bound_to = pagination.fingerprint("users", role, without_roles, is_active)
        BY_NAME.start(
            page_tokens(self._session), page_token, bound_to
        )  # a bad token is refused before any SQL
        # An alias: the subqueries must not correlate with the outer-joined user_roles.
        member = aliased(UserRole)
        stmt = users_with_roles()
        if role is not None:
            rid = await role_id(self._session, role)
            stmt = stmt.where(User.id.in_(select(member.user_id).where(member.role_id == rid)))
        if without_roles:
            stmt = stmt.where(~exists().where(member.user_id == User.id))
        if is_active is not None:
            stmt = stmt.where(User.is_active.is_(is_active))
        stmt = BY_NAME.select(
            page_tokens(self._session), stmt, [User.username], page_token, bound_to, page_size
        )
        rows = (await self._session.execute(stmt)).all()
        kept, next_token = BY_NAME.page(
            page_tokens(self._session), rows, page_size, bound_to, lambda row: (row.username,)
        )
        return users_pb2.ListUsersResponse(
            users=[mapping.user(**row._asdict()) for row in kept], next_page_token=next_token
        )

    async def update(
        self, user_id: uuid.UUID, *, email: str | None, is_active: bool | None
    ) -> users_pb2.User:
        """Change the given fields (None: leave alone); update_time from the database clock."""
        await require_user(self._session, user_id)
        if is_active is False:
            await guard_last_admin(self._session, user_id)
        await self._note_update(user_id, email, is_active)
        values: dict[str, Any] = {"update_time": func.now()}
        if email is not None:
            values["email"] = email
        if is_active is not None:
            values["is_active"] = is_active
        stmt = update(User).where(User.id == user_id).values(**values)
        await self._session.execute(stmt.execution_options(synchronize_session=False))
        return await self.get(user_id)

    async def _note_update(
        self, user_id: uuid.UUID, email: str | None, is_active: bool | None
    ) -> None:
        was_active = await self._session.scalar(
            select(User.is_active).where(User.id == user_id).with_for_update()
        )
        changes = audit.fields(email=(None, None)) if email is not None else {}
        if is_active is not None:
            changes |= audit.fields(is_active=(was_active, is_active))
        deactivated = was_active and is_active is False
        action = audit.Action.USER_DEACTIVATED if deactivated else None
        audit.note(self._session, f"users/{user_id}", changes, action)

    async def delete(self, user_id: uuid.UUID, *, force: bool) -> None:
        """Hard delete. Memberships cascade and grants they made keep granted_by NULL (FKs);
        documents (soft-deleted ones too) only go with ``force``."""
        await require_user(self._session, user_id)
        await guard_last_admin(self._session, user_id)
        audit.note(self._session, f"users/{user_id}", audit.fields(force=(None, force)))
        # Every document of the owner, whatever its state: the caller is an admin, and
        # show_deleted makes the policy listener include soft-deleted rows.
        owned = Document.owner_id == user_id
        any_owned = select(Document.id).where(owned).limit(1)
        if await self._session.scalar(any_owned.execution_options(**{SHOW_DELETED: True})):
            if not force:
                raise user_owns_documents()
            await self._session.execute(
                delete(Document)
                .where(owned)
                .execution_options(synchronize_session=False, **{SHOW_DELETED: True})
            )
        # A document created meanwhile fails the foreign key (RESTRICT): USER_OWNS_DOCUMENTS.
        await self._session.execute(delete(User).where(User.id == user_id))
