"""Document templates: named bodies with {{placeholder}} markers (rendered by
docgate.templates). Admins write them; every caller reads them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination
from docgate.db import audit
from docgate.db.models import Template
from docgate.db.uow import page_tokens
from docgate.errors import Aborted, AlreadyExists, template_not_found
from docgate.repositories.roles import BY_NAME
from docgate.v1 import projects_pb2

_TEMPLATES: Final[Table] = Template.__table__  # type: ignore[assignment]
# ListTemplates leaves bodies out (500 bodies of 1 MiB do not fit a message).
_LISTED: Final = tuple(c for c in _TEMPLATES.c if c.key != "body")


class TemplateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, values: Mapping[str, str]) -> projects_pb2.Template:
        stmt = (
            pg_insert(_TEMPLATES)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[_TEMPLATES.c.name])
            .returning(*_TEMPLATES.c)
        )
        row = (await self._session.execute(stmt)).mappings().first()
        if row is None:
            raise AlreadyExists(
                f"a template named {values['name']!r} already exists",
                reason="TEMPLATE_EXISTS",
                metadata={"template": values["name"]},
            )
        changes = audit.fields(**{k: (None, v) for k, v in values.items() if k != "name"})
        audit.note(self._session, f"templates/{values['name']}", changes)
        return mapping.template(row, with_body=True)

    async def get(self, name: str) -> projects_pb2.Template:
        stmt = select(_TEMPLATES).where(_TEMPLATES.c.name == name)
        row = (await self._session.execute(stmt)).mappings().first()
        if row is None:
            raise template_not_found(name)
        return mapping.template(row, with_body=True)

    async def list(self, page_size: int, page_token: str) -> projects_pb2.ListTemplatesResponse:
        fingerprint = pagination.fingerprint("templates")
        name = _TEMPLATES.c.name
        stmt = BY_NAME.select(
            page_tokens(self._session), select(*_LISTED), [name], page_token, fingerprint, page_size
        )
        rows = (await self._session.execute(stmt)).all()
        kept, next_token = BY_NAME.page(
            page_tokens(self._session), rows, page_size, fingerprint, lambda row: (row.name,)
        )
        return projects_pb2.ListTemplatesResponse(
            templates=[mapping.template(row._mapping, with_body=False) for row in kept],
            next_page_token=next_token,
        )

    async def _lock(self, name: str, version: int | None) -> None:
        stmt = select(_TEMPLATES.c.version).where(_TEMPLATES.c.name == name).with_for_update()
        current = await self._session.scalar(stmt)
        if current is None:
            raise template_not_found(name)
        if version is not None and version != current:
            raise Aborted(
                "the template changed since that etag was read; read it again",
                reason="ETAG_MISMATCH",
            )

    async def update(
        self, name: str, changes: Mapping[str, Any], version: int | None
    ) -> projects_pb2.Template:
        await self._lock(name, version)
        before = await self.get(name)
        changed = {k: (getattr(before, k), v) for k, v in changes.items()}
        audit.note(self._session, f"templates/{name}", audit.fields(**changed))
        stmt = (
            update(_TEMPLATES)
            .where(_TEMPLATES.c.name == name)
            .values(**changes, version=_TEMPLATES.c.version + 1, update_time=func.now())
            .returning(*_TEMPLATES.c)
        )
        row = (await self._session.execute(stmt)).mappings().one()
        return mapping.template(row, with_body=True)

    async def delete(self, name: str, version: int | None) -> None:
        await self._lock(name, version)
        audit.note(self._session, f"templates/{name}")
        await self._session.execute(delete(_TEMPLATES).where(_TEMPLATES.c.name == name))
