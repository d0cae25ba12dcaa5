"""Roles: the named sets of permissions users hold."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination
from docgate.db import audit
from docgate.db.models import Role
from docgate.db.uow import page_tokens
from docgate.errors import AlreadyExists, FailedPrecondition, role_not_found
from docgate.pagination import KeyKind, Keyset
from docgate.v1 import roles_pb2

# Roles, configurations and users are listed by their unique name.
BY_NAME = Keyset((KeyKind.TEXT,))


async def role_ids(session: AsyncSession, names: Iterable[str]) -> list[uuid.UUID]:
    """Ids of the roles called ``names``; NOT_FOUND naming the first unknown one."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    rows = (await session.execute(select(Role.name, Role.id).where(Role.name.in_(wanted)))).all()
    found = {name: rid for name, rid in rows}
    for name in wanted:
        if name not in found:
            raise role_not_found(name)
    return [found[name] for name in wanted]


async def role_id(session: AsyncSession, name: str) -> uuid.UUID:
    (rid,) = await role_ids(session, [name])
    return rid


def _roles() -> Select[str, str, bool, datetime]:
    return select(Role.name, Role.description, Role.is_builtin, Role.create_time)


class RoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, name: str, description: str) -> roles_pb2.Role:
        # ON CONFLICT DO NOTHING: a taken name is an answer, not an aborted transaction.
        stmt = (
            pg_insert(Role)
            .values(name=name, description=description)
            .on_conflict_do_nothing(index_elements=[Role.name])
            .returning(Role.name, Role.description, Role.is_builtin, Role.create_time)
        )
        row = (await self._session.execute(stmt)).first()
        if row is None:
            raise AlreadyExists(
                "a role with that name already exists",
                reason="ROLE_EXISTS",
                metadata={"role": name},
            )
        audit.note(self._session, f"roles/{name}", audit.fields(description=(None, description)))
        return mapping.role(**row._asdict())

    async def get(self, name: str) -> roles_pb2.Role:
        row = (await self._session.execute(_roles().where(Role.name == name))).first()
        if row is None:
            raise role_not_found(name)
        return mapping.role(**row._asdict())

    async def list_page(self, page_size: int, page_token: str) -> roles_pb2.ListRolesResponse:
        bound_to = pagination.fingerprint("roles")
        stmt = BY_NAME.select(
            page_tokens(self._session), _roles(), [Role.name], page_token, bound_to, page_size
        )
        rows = (await self._session.execute(stmt)).all()
        kept, next_token = BY_NAME.page(
            page_tokens(self._session), rows, page_size, bound_to, lambda row: (row.name,)
        )
        return roles_pb2.ListRolesResponse(
            roles=[mapping.role(**row._asdict()) for row in kept], next_page_token=next_token
        )

    async def update_description(self, name: str, description: str) -> roles_pb2.Role:
        old = await self._session.scalar(
            select(Role.description).where(Role.name == name).with_for_update()
        )
        audit.note(self._session, f"roles/{name}", audit.fields(description=(old, description)))
        stmt = (
            update(Role)
            .where(Role.name == name)
            .values(description=description)
            .returning(Role.name, Role.description, Role.is_builtin, Role.create_time)
        )
        row = (await self._session.execute(stmt)).first()
        if row is None:
            raise role_not_found(name)
        return mapping.role(**row._asdict())

    async def delete(self, name: str) -> None:
        """Memberships and grants go with the role: ON DELETE CASCADE, same statement."""
        row = (
            await self._session.execute(
                select(Role.is_builtin).where(Role.name == name).with_for_update()
            )
        ).first()
        if row is None:
            raise role_not_found(name)
        if row.is_builtin:
            raise FailedPrecondition(
                "built-in roles cannot be deleted",
                reason="BUILTIN_ROLE",
                metadata={"role": name},
            )
        audit.note(self._session, f"roles/{name}")
        await self._session.execute(delete(Role).where(Role.name == name))
