"""Writing the audit trail: in the transaction of the change it records, as its last statement.

Repositories `note` what they change (the resource, the changed fields) on the session; the
unit of work calls `append_for` just before COMMIT, which turns the RPC's notes into exactly one
entry (docgate.audit has the rules). Appending takes a transaction-scoped advisory lock, reads
the chain head, and inserts the next entry: writers queue only for the insert and the COMMIT
(the lock is released by COMMIT or ROLLBACK), and the head they read is the committed one
(READ COMMITTED: the statement after the lock takes a fresh snapshot). A change that rolls back
takes its entry with it; one that commits has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from docgate import audit, calls
from docgate.audit import Action, Entry, Note, Scalar
from docgate.db.models import AuditEntry

__all__ = ["Action", "append_for", "fields", "note"]
_TABLE: Final[Table] = AuditEntry.__table__  # type: ignore[assignment]
NOTES: Final = "docgate.audit_notes"  # the session.info key
# Any fixed bigint: the one advisory lock every append takes ("docgaudt").
CHAIN_LOCK: Final = 0x646F_6367_6175_6474
_HEAD = text(
    "SELECT now() AS time, h.id, h.hash FROM (SELECT 1) AS one LEFT JOIN LATERAL "
    "(SELECT id, hash FROM audit_entries ORDER BY id DESC LIMIT 1) AS h ON true"
)


def note(
    session: AsyncSession | Session,
    resource: str,
    changes: Mapping[str, Mapping[str, Scalar]] | None = None,
    action: Action | None = None,
) -> None:
    """Record that this transaction changes ``resource`` (written at commit, in one entry)."""
    stored = {name: dict(values) for name, values in (changes or {}).items()}
    session.info.setdefault(NOTES, []).append(Note(resource, stored, action))


def fields(**values: tuple[Any, Any]) -> dict[str, dict[str, Scalar]]:
    """``fields(title=(old, new), content=(None, None))``: the changed fields, secrets by name."""
    return {name: audit.changed(name, old, new) for name, (old, new) in values.items()}


def _entry(method: str, notes: list[Note]) -> tuple[Action, str, dict[str, Any]] | None:
    """The action, resource and changes of the RPC's entry; None when it leaves none."""
    bypassed = [n for n in notes if n.action is Action.ADMIN_BYPASS_READ]
    allowed = audit.WRITES.get(method)
    if allowed is None:
        if bypassed and method in audit.BYPASS_READS:
            return Action.ADMIN_BYPASS_READ, bypassed[0].resource, {}
        raise audit.UnauditedWriteError(f"{method} wrote data but has no audit action")
    action = next((n.action for n in notes if n.action in allowed), allowed[0])
    changes: dict[str, Any] = {}
    for n in notes:
        changes.update(n.changes)
    return action, (notes[0].resource if notes else ""), changes


async def append_for(session: AsyncSession, actor_id: Any) -> Entry | None:
    """The RPC's entry, appended to the chain (nothing outside an RPC: see docs/security.md)."""
    method = calls.current_method()
    if method is None:
        return None
    decided = _entry(method, session.info.get(NOTES, []))
    if decided is None:
        return None
    action, resource, changes = decided
    connection = await session.connection()
    await connection.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))
    head = (await connection.execute(_HEAD)).one()
    entry = Entry(
        id=(head.id or 0) + 1,
        time=head.time,
        actor_id=actor_id,
        request_id=calls.current_request_id(),
        method=method,
        action=action,
        resource=resource,
        changes=changes,
        prev_hash=head.hash or audit.GENESIS,
    )
    digest = audit.chain_hash(entry.prev_hash, entry)
    await connection.execute(
        _TABLE.insert().values(
            id=entry.id,
            time=entry.time,
            actor_id=entry.actor_id,
            request_id=entry.request_id,
            method=method,
            action=action,
            resource=resource,
            changes=changes,
            prev_hash=entry.prev_hash,
            hash=digest,
        )
    )
    return entry
