"""Grants of configurations to roles (role_configurations: level, granter, expiry).

Every time comparison uses the database clock: ``now()`` is the transaction's start time, so
the grant time written and the expiry checked in one RPC agree.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, policy
from docgate.db import audit
from docgate.db.models import Configuration, RoleConfiguration, UserRole
from docgate.errors import InvalidArgument
from docgate.repositories.configurations import CONFIGURATION_COLUMNS, require_configuration
from docgate.repositories.roles import role_id
from docgate.v1 import roles_pb2

_GRANT = (
    RoleConfiguration.configuration_id,
    RoleConfiguration.access_level,
    RoleConfiguration.granted_by,
    RoleConfiguration.granted_at,
    RoleConfiguration.expires_at,
)


class GrantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def grant(
        self,
        role: str,
        configuration_id: uuid.UUID,
        access_level: int,
        expires_at: datetime | None,
        granted_by: uuid.UUID,
    ) -> roles_pb2.ConfigurationGrant:
        """Insert or refresh the grant; granted_by and granted_at always come from the server."""
        changes = audit.fields(access_level=(None, access_level), expires_at=(None, expires_at))
        audit.note(self._session, f"roles/{role}/configurations/{configuration_id}", changes)
        rid = await role_id(self._session, role)
        await require_configuration(self._session, configuration_id)
        if expires_at is not None:
            db_now = await self._session.scalar(select(func.now()))
            if db_now is None or expires_at <= db_now:
                raise InvalidArgument(
                    "expire_time must be in the future",
                    field="expire_time",
                    reason="EXPIRE_TIME_IN_PAST",
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
        ).returning(*_GRANT)
        # A configuration deleted meanwhile fails the foreign key: NOT_FOUND (docgate.db.errors).
        row = (await self._session.execute(upsert)).one()
        return mapping.grant(role=role, **row._asdict())

    async def revoke(self, role: str, configuration_id: uuid.UUID) -> None:
        """Idempotent, like RevokeRole; an unknown role or configuration is NOT_FOUND."""
        audit.note(self._session, f"roles/{role}/configurations/{configuration_id}")
        rid = await role_id(self._session, role)
        await require_configuration(self._session, configuration_id)
        await self._session.execute(
            delete(RoleConfiguration).where(
                RoleConfiguration.role_id == rid,
                RoleConfiguration.configuration_id == configuration_id,
            )
        )

    async def grants_of(self, role: str) -> roles_pb2.ListRoleConfigurationsResponse:
        rid = await role_id(self._session, role)
        stmt = (
            select(*_GRANT)
            .where(RoleConfiguration.role_id == rid)
            .order_by(RoleConfiguration.configuration_id)
        )
        rows = (await self._session.execute(stmt)).all()
        return roles_pb2.ListRoleConfigurationsResponse(
            grants=[mapping.grant(role=role, **row._asdict()) for row in rows]
        )

    async def reachable_by(self, user_id: uuid.UUID) -> roles_pb2.ListMyConfigurationsResponse:
        """One query: per configuration, the user's roles' unexpired grant that gives the
        highest level, and when that level ends — the latest expiry among the grants giving
        it, none when one of them is permanent (DISTINCT ON picks exactly that grant: highest
        level first, then a permanent one, then the latest expiry)."""
        best = (
            select(
                RoleConfiguration.configuration_id,
                RoleConfiguration.access_level,
                RoleConfiguration.expires_at,
            )
            .join(UserRole, UserRole.role_id == RoleConfiguration.role_id)
            .where(
                UserRole.user_id == user_id,
                policy.grant_in_force(RoleConfiguration),
            )
            .ext(distinct_on(RoleConfiguration.configuration_id))
            .order_by(
                RoleConfiguration.configuration_id,
                RoleConfiguration.access_level.desc(),
                RoleConfiguration.expires_at.desc().nulls_first(),
            )
            .subquery()
        )
        stmt = (
            select(*CONFIGURATION_COLUMNS, best.c.access_level, best.c.expires_at)
            .join(best, best.c.configuration_id == Configuration.id)
            .order_by(Configuration.name)
        )
        rows = (await self._session.execute(stmt)).all()
        return roles_pb2.ListMyConfigurationsResponse(
            configurations=[mapping.effective_configuration(**row._asdict()) for row in rows]
        )
