"""Configurations: named features that roles are granted (see docgate.repositories.grants)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination
from docgate.db.models import Configuration
from docgate.errors import AlreadyExists, NotFound
from docgate.repositories.roles import key_after
from docgate.v1 import roles_pb2

CONFIGURATION_COLUMNS = (
    Configuration.id,
    Configuration.name,
    Configuration.description,
    Configuration.create_time,
)


def configuration_not_found() -> NotFound:
    return NotFound("configuration not found", reason="CONFIGURATION_NOT_FOUND")


async def require_configuration(session: AsyncSession, configuration_id: uuid.UUID) -> None:
    found = await session.scalar(
        select(Configuration.id).where(Configuration.id == configuration_id)
    )
    if found is None:
        raise configuration_not_found()


class ConfigurationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, name: str, description: str) -> roles_pb2.Configuration:
        stmt = (
            pg_insert(Configuration)
            .values(name=name, description=description)
            .on_conflict_do_nothing(index_elements=[Configuration.name])
            .returning(*CONFIGURATION_COLUMNS)
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
        stmt = select(*CONFIGURATION_COLUMNS).order_by(Configuration.name).limit(page_size + 1)
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
