"""Configurations: named features that roles are granted (see docgate.repositories.grants)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination
from docgate.db import audit
from docgate.db.models import Configuration
from docgate.db.uow import page_tokens
from docgate.errors import AlreadyExists, configuration_not_found
from docgate.repositories.roles import BY_NAME
from docgate.v1 import roles_pb2

CONFIGURATION_COLUMNS = (
    Configuration.id,
    Configuration.name,
    Configuration.description,
    Configuration.create_time,
)


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
        audit.note(self._session, f"configurations/{row.id}", audit.fields(name=(None, name)))
        return mapping.configuration(**row._asdict())

    async def list_page(
        self, page_size: int, page_token: str
    ) -> roles_pb2.ListConfigurationsResponse:
        bound_to = pagination.fingerprint("configurations")
        columns = [Configuration.name]
        stmt = select(*CONFIGURATION_COLUMNS)
        stmt = BY_NAME.select(
            page_tokens(self._session), stmt, columns, page_token, bound_to, page_size
        )
        rows = (await self._session.execute(stmt)).all()
        kept, next_token = BY_NAME.page(
            page_tokens(self._session), rows, page_size, bound_to, lambda row: (row.name,)
        )
        return roles_pb2.ListConfigurationsResponse(
            configurations=[mapping.configuration(**row._asdict()) for row in kept],
            next_page_token=next_token,
        )

    async def delete(self, configuration_id: uuid.UUID) -> None:
        """Grants go with it (ON DELETE CASCADE)."""
        audit.note(self._session, f"configurations/{configuration_id}")
        stmt = (
            delete(Configuration)
            .where(Configuration.id == configuration_id)
            .returning(Configuration.id)
        )
        if (await self._session.execute(stmt)).first() is None:
            raise configuration_not_found()
