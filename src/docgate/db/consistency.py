"""Read-your-writes across read replicas: the consistency token and the call's record of it.

A write RPC answers with the WAL position its commit reached (`x-docgate-consistency`
response metadata); a read that sends that token back is served by a replica only once the
replica has replayed up to it (docgate.db.replicas), else by the primary.

Which position: `pg_current_wal_insert_lsn()` read on the writer's own connection *after*
COMMIT returned. The commit record was inserted before COMMIT returned, so the insert position
is at or past its end; `pg_last_wal_replay_lsn()` on a standby is the end of the last record it
replayed, so "replay ≥ token" means the commit is visible there. (A position read inside the
transaction would precede the commit record: a standby could reach it and still not show the
write.) The token may be a little ahead of the commit (other sessions' records, or the page
header when the commit ended a WAL page); that only sends a read to the primary a little
longer, never to a replica that lacks the write.

The token is opaque to clients: ``1.`` and the LSN as 16 hex digits. It carries no secret and
needs none: a forged one can only send the forger's own reads to the primary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

from docgate.errors import InvalidArgument, Unavailable

HEADER: Final = "x-docgate-consistency"
_TOKEN = re.compile(r"1\.([0-9a-f]{16})")
_PG_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def lsn_from_pg(text: str) -> int:
    """PostgreSQL's ``X/Y`` pg_lsn text as one integer (bytes into the WAL)."""
    match = _PG_LSN.fullmatch(text)
    if match is None:
        raise ValueError(f"not a pg_lsn: {text!r}")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def encode_token(lsn: int) -> str:
    return f"1.{lsn:016x}"


def _malformed(detail: str) -> InvalidArgument:
    return InvalidArgument(
        f"{HEADER} metadata {detail}: send back the value a write returned, unchanged",
        field=HEADER,
        reason="MALFORMED_CONSISTENCY_TOKEN",
    )


def token_from(metadata: object) -> int | None:
    """The LSN a call's ``x-docgate-consistency`` metadata asks for (None: not sent);
    INVALID_ARGUMENT when it is not one token a write returned."""
    values = [value for key, value in (metadata or ()) if key == HEADER]  # type: ignore[attr-defined]
    if not values:
        return None
    if len(values) != 1:
        raise _malformed("is sent more than once")
    value = values[0]
    match = _TOKEN.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _malformed("is not a consistency token")
    return int(match.group(1), 16)


class ReplicaFailed(Unavailable):
    """A read on a replica failed for the replica's sake, before the call wrote anything: the
    edge runs the call once more, on the primary (``CallConsistency.primary_only``). Unhandled,
    it answers UNAVAILABLE like any outage."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="DATABASE_UNAVAILABLE")


@dataclass
class CallConsistency:
    """One RPC's consistency: what its read needs (``read_after``: an LSN the serving
    database must have replayed), what its write reached (``committed``), and whether its reads
    must stay on the primary (a retry after ReplicaFailed)."""

    read_after: int | None = None
    committed: int | None = None
    primary_only: bool = False


# Set by the edge for the call's task (docgate.edge.consistency); the unit of work reads
# ``read_after`` and records ``committed`` in the same object.
_call: ContextVar[CallConsistency | None] = ContextVar("docgate_call_consistency", default=None)


def current_call() -> CallConsistency | None:
    return _call.get()


@contextmanager
def call_consistency(read_after: int | None) -> Iterator[CallConsistency]:
    state = CallConsistency(read_after=read_after)
    token = _call.set(state)
    try:
        yield state
    finally:
        _call.reset(token)
