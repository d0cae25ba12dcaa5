"""Configurations and their grants to roles (role_configurations, with level and expiry).

Every time comparison uses the database clock: ``now()`` is the transaction's start time, so
the grant time written and the expiry checked in one RPC agree.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination
from docgate.db.models import Configuration, RoleConfiguration, UserRole
from docgate.errors import AlreadyExists, InvalidArgument, NotFound
from docgate.repositories.roles import key_after, role_id
from docgate.v1 import roles_pb2

_COLUMNS = (Configuration.id, Configuration.name, Configuration.description)
_CONFIGURATION = (*_COLUMNS, Configuration.create_time)


def configuration_not_found() -> NotFound:
    return NotFound("configuration not found", reason="CONFIGURATION_NOT_FOUND")


class ConfigurationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, name: str, description: str) -> roles_pb2.Configuration:
        stmt = (
            pg_insert(Configuration)
            .values(name=name, description=description)
            .on_conflict_do_nothing(index_elements=[Configuration.name])
            .returning(*_CONFIGURATION)
        )
        row = (await self._session.execute(stmt)).first()
        if row is None:
            raise AlreadyExists(
                "a configuration with that name already exists", reason="CONFIGURATION_EXISTS"
            )
        return mapping.configuration(**row._asdict())

    async def list_page(
        self, page_size: int, page_token: str
    ) -> roles_pb2.ListConfigurationsResponse:
        bound_to = pagination.fingerprint("configurations")
        stmt = select(*_CONFIGURATION).order_by(Configuration.name).limit(page_size + 1)
        after = key_after(page_token, bound_to)
        if after is not None:
            stmt = stmt.where(Configuration.name > after)
        rows = (await self._session.execute(stmt)).all()
        reply = roles_pb2.ListConfigurationsResponse(
            configurations=[mapping.configuration(**row._asdict()) for row in rows[:page_size]]
        )
        if len(rows) > page_size:
            reply.next_page_token = pagination.encode(bound_to, [rows[page_size - 1].name])
        return reply

    async def delete(self, configuration_id: uuid.UUID) -> None:
        """Grants go with it (ON DELETE CASCADE)."""
        stmt = (
            delete(Configuration)
            .where(Configuration.id == configuration_id)
            .returning(Configuration.id)
        )
        if (await self._session.execute(stmt)).first() is None:
            raise configuration_not_found()

    async def grant(
        self,
        role: str,
        configuration_id: uuid.UUID,
        access_level: int,
        expires_at: datetime | None,
        granted_by: uuid.UUID,
    ) -> roles_pb2.ConfigurationGrant:
        """Insert or refresh the grant; granted_by and granted_at always come from the server."""
        rid = await role_id(self._session, role)
        await self._require(configuration_id)
        if expires_at is not None:
            db_now = await self._session.scalar(select(func.now()))
            if db_now is None or expires_at <= db_now:
                raise InvalidArgument(
                    "expire_time must be in the future",
                    reason="EXPIRE_TIME_IN_PAST",
                    metadata={"field": "expire_time"},
                )
        values = {
            "access_level": access_level,
            "expires_at": expires_at,
            "granted_by": granted_by,
            "granted_at": func.now(),
        }
        insert = pg_insert(RoleConfiguration).values(
            role_id=rid, configuration_id=configuration_id, **values
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[RoleConfiguration.role_id, RoleConfiguration.configuration_id],
            set_=values,
        ).returning(
            RoleConfiguration.configuration_id,
            RoleConfiguration.access_level,
            RoleConfiguration.granted_by,
            RoleConfiguration.granted_at,
            RoleConfiguration.expires_at,
        )
        try:
            row = (await self._session.execute(upsert)).one()
        except IntegrityError as exc:  # the configuration was deleted meanwhile
            raise configuration_not_found() from exc
        return mapping.grant(role=role, **row._asdict())

    async def revoke(self, role: str, configuration_id: uuid.UUID) -> None:
        """Idempotent, like RevokeRole; an unknown role or configuration is NOT_FOUND."""
        rid = await role_id(self._session, role)
        await self._require(configuration_id)
        await self._session.execute(
            delete(RoleConfiguration).where(
                RoleConfiguration.role_id == rid,
                RoleConfiguration.configuration_id == configuration_id,
            )
        )

    async def grants_of(self, role: str) -> roles_pb2.ListRoleConfigurationsResponse:
        rid = await role_id(self._session, role)
        stmt = (
            select(
                RoleConfiguration.configuration_id,
                RoleConfiguration.access_level,
                RoleConfiguration.granted_by,
                RoleConfiguration.granted_at,
                RoleConfiguration.expires_at,
            )
            .where(RoleConfiguration.role_id == rid)
            .order_by(RoleConfiguration.configuration_id)
        )
        rows = (await self._session.execute(stmt)).all()
        return roles_pb2.ListRoleConfigurationsResponse(
            grants=[mapping.grant(role=role, **row._asdict()) for row in rows]
        )

    async def reachable_by(self, user_id: uuid.UUID) -> roles_pb2.ListMyConfigurationsResponse:
        """One query: the user's roles' unexpired grants, grouped per configuration.

        min() ignores NULLs, so the soonest expiry is NULL only when no grant expires.
        """
        stmt = (
            select(
                *_CONFIGURATION,
                func.max(RoleConfiguration.access_level).label("access_level"),
                func.min(RoleConfiguration.expires_at).label("expires_at"),
            )
            .join(RoleConfiguration, RoleConfiguration.configuration_id == Configuration.id)
            .join(UserRole, UserRole.role_id == RoleConfiguration.role_id)
            .where(
                UserRole.user_id == user_id,
                # Expired at exactly expires_at (the SpiceDB rule).
                or_(
                    RoleConfiguration.expires_at.is_(None),
                    RoleConfiguration.expires_at > func.now(),
                ),
            )
            .group_by(Configuration.id)
            .order_by(Configuration.name)
        )
        rows = (await self._session.execute(stmt)).all()
        return roles_pb2.ListMyConfigurationsResponse(
            configurations=[mapping.effective_configuration(**row._asdict()) for row in rows]
        )

    async def _require(self, configuration_id: uuid.UUID) -> None:
        found = await self._session.scalar(
            select(Configuration.id).where(Configuration.id == configuration_id)
        )
        if found is None:
            raise configuration_not_found()
