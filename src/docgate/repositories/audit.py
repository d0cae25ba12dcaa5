"""The audit trail, read: ListAuditEntries pages and the CLI's chain walk and export.

Entries are written by docgate.db.audit, in the transaction of the change they record; this
module only reads them. Newest first by id (ids are dense and in chain order), keyset pages
through docgate.pagination like every other listing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Select, Table, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from docgate import mapping, pagination
from docgate.audit import Action, Entry
from docgate.db.models import AuditEntry
from docgate.db.uow import page_tokens
from docgate.pagination import KeyKind, Keyset
from docgate.v1 import audit_pb2

_NEWEST_FIRST: Final = Keyset((KeyKind.INTEGER,))
_TABLE: Final[Table] = AuditEntry.__table__  # type: ignore[assignment]
_WALK_BATCH: Final = 1000


@dataclass(frozen=True)
class AuditQuery:
    page_size: int
    page_token: str
    actor_id: uuid.UUID | None = None
    resource: str | None = None
    action: Action | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None

    def fingerprint(self) -> str:
        return pagination.fingerprint(
            "audit", self.actor_id, self.resource, self.action, self.start_time, self.end_time
        )


def _like_prefix(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


def _filtered(query: AuditQuery) -> Select[Any]:
    stmt = select(_TABLE).where(_TABLE.c.id > 0)  # sealed (all that others can see)
    if query.actor_id is not None:
        stmt = stmt.where(_TABLE.c.actor_id == query.actor_id)
    if query.resource is not None:
        stmt = stmt.where(
            or_(
                _TABLE.c.resource == query.resource,
                _TABLE.c.resource.like(_like_prefix(query.resource), escape="\\"),
            )
        )
    if query.action is not None:
        stmt = stmt.where(_TABLE.c.action == query.action)
    if query.start_time is not None:
        stmt = stmt.where(_TABLE.c.time >= query.start_time)
    if query.end_time is not None:
        stmt = stmt.where(_TABLE.c.time < query.end_time)
    return stmt


def entry_of(row: Any) -> Entry:
    """A stored row as the value the chain is computed over."""
    return Entry(
        id=row.id,
        time=row.time,
        actor_id=row.actor_id,
        request_id=row.request_id,
        method=row.method,
        action=row.action,
        resource=row.resource,
        changes=row.changes,
        prev_hash=bytes(row.prev_hash),
        hash=bytes(row.hash),
    )


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def list(self, query: AuditQuery) -> audit_pb2.ListAuditEntriesResponse:
        tokens, fingerprint = page_tokens(self._session), query.fingerprint()
        stmt = _filtered(query)
        start = _NEWEST_FIRST.start(tokens, query.page_token, fingerprint)
        if start is not None:
            stmt = stmt.where(_TABLE.c.id < start[0])
        stmt = stmt.order_by(_TABLE.c.id.desc()).limit(_NEWEST_FIRST.limit(query.page_size))
        rows = (await self._session.execute(stmt)).mappings().all()
        kept, next_token = _NEWEST_FIRST.page(
            tokens, rows, query.page_size, fingerprint, lambda row: (row["id"],)
        )
        return audit_pb2.ListAuditEntriesResponse(
            entries=[mapping.audit_entry(row) for row in kept], next_page_token=next_token
        )


async def walk(connection: AsyncConnection, since: datetime | None = None) -> AsyncIterator[Entry]:
    """Every entry in chain order (from ``since`` on, when given), read in batches."""
    after = 0
    while True:
        stmt = select(_TABLE).where(_TABLE.c.id > after)
        if since is not None:
            stmt = stmt.where(_TABLE.c.time >= since)
        stmt = stmt.order_by(_TABLE.c.id).limit(_WALK_BATCH)
        rows = (await connection.execute(stmt)).all()
        for row in rows:
            yield entry_of(row)
        if len(rows) < _WALK_BATCH:
            return
        after = rows[-1].id
