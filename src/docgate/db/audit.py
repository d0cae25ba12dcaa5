"""Writing the audit trail: in the transaction of the change it records, as its last statement;
sealing it after that transaction has committed.

Repositories `note` what they change (the resource, the changed fields) on the session; the
unit of work calls `append_for` just before COMMIT, which turns the RPC's notes into exactly one
entry (docgate.audit has the rules). docgate encodes the entry's body and inserts it unsealed (a
negative placeholder id, no hashes): the write commits without touching the chain, so writers
never queue for it and their commits share WAL flushes. A change that rolls back takes its
entry with it; one that commits has it.

`seal` then gives committed entries their place in the chain: ``audit_seal_pending`` (migration
0009_audit_sealer) takes the chain's transaction-scoped advisory lock, reads the head (in a
snapshot taken after the lock) and gives up to ``batch`` pending entries, in placeholder order,
the next ids (dense), prev_hash and hash, in one statement. The background sealer
(docgate.db.sealer) runs it after writes and on a tick, only *trying* the lock; whatever reads
the chain runs `seal_all` first, which waits for it, so it sees every committed entry sealed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from docgate import audit, calls
from docgate.audit import Action, Entry, Note, Scalar
from docgate.db.prepared import PreparedQuery, connection_of

__all__ = ["Action", "append_for", "fields", "note", "seal", "seal_all"]
NOTES: Final = "docgate.audit_notes"  # the session.info key
# The chain's advisory lock ("docgaudt"; written into the migrations' functions).
CHAIN_LOCK: Final = 0x646F_6367_6175_6474
# One entry per transaction, so the transaction's id makes a unique placeholder id. The time
# is the transaction's (now()), written into the body here as docgate.audit.encoded_time does
# (UTC, microseconds, +00:00), after the rest docgate encoded (docgate.audit.body_until_time).
_APPEND = text(
    "INSERT INTO audit_entries "
    "(id, time, actor_id, request_id, method, action, resource, changes, body) "
    "VALUES (-txid_current(), now(), :actor_id, :request_id, :method, "
    "CAST(:action AS audit_action), :resource, CAST(:changes AS jsonb), "
    "CAST(:body AS bytea) || convert_to('\"' || "
    "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00\"}', 'UTF8'))"
)
# Run on the driver (docgate.db.prepared): compiled once, no SQLAlchemy execution per write.
_APPEND_ON_DRIVER = PreparedQuery(_APPEND)
_SEAL = text("SELECT audit_seal_pending(:batch, :wait)")
# Entries sealed per statement: the chain lock is held for one batch at a time.
SEAL_BATCH: Final = 1000


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
    """Insert the RPC's entry, unsealed, in one statement (nothing outside an RPC or a CLI
    command); a sealer gives it its id and hashes after COMMIT (`seal`). The returned entry
    has neither (nor its time, which the database gives it)."""
    method = calls.current_method()
    if method is None:
        return None
    decided = _entry(method, session.info.get(NOTES, []))
    if decided is None:
        return None
    action, resource, changes = decided
    connection = await connection_of(session)
    untimed = datetime.min  # the database gives the time (the transaction's now())
    request_id = calls.current_request_id()
    entry = Entry(0, untimed, actor_id, request_id, method, action, resource, changes)
    values = {
        "actor_id": actor_id,
        "request_id": entry.request_id,
        "method": method,
        "action": action.value,
        "resource": resource,
        "changes": json.dumps(changes),
        "body": audit.body_until_time(entry),
    }
    await _APPEND_ON_DRIVER.fetch(connection, **values)
    return entry


async def seal(connection: AsyncConnection, *, wait: bool, batch: int = SEAL_BATCH) -> int | None:
    """Seal up to ``batch`` committed pending entries: how many were sealed, or None when
    ``wait`` is false and another sealer holds the chain (it seals them). ``connection`` must
    be in autocommit (docgate's engines are): the statement is its own transaction, so the
    lock is released, and the seal committed, when it returns."""
    sealed = await connection.scalar(_SEAL, {"batch": batch, "wait": wait})
    return None if sealed is None else int(sealed)


async def seal_all(connection: AsyncConnection) -> int:
    """Seal every entry committed so far, waiting for the chain lock: a read of the chain
    after it sees them all (`docgate audit verify`, export, ListAuditEntries)."""
    total = 0
    while True:
        sealed = await seal(connection, wait=True)
        total += sealed or 0
        if not sealed or sealed < SEAL_BATCH:
            return total
