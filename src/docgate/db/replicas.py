"""Read replicas: which standby (if any) serves a read, round robin among the usable ones.

A replica is usable while its last check (every ``health_interval_seconds``, `watch`) found it
answering, in recovery (a standby), and *fresh*: it had replayed everything the primary had
flushed at some moment within the last ``replica_max_lag_seconds``. The primary's flushed
position is sampled on each check, before the replicas are asked, so the rule holds on an idle
primary (nothing to replay: fresh) as well as on a busy one, and a standby cut off from its
primary goes stale as soon as the primary writes. The bound is the maximum lag plus up to one
check interval.

A read that carries a consistency token (docgate.db.consistency) needs more: the replica must
have replayed up to the token's position. The position seen at the last check answers that
for free when it is far enough; else the replica is asked on the connection the read will use
(one round trip), and one that is still behind is passed over. No replica fits: None, and the
read goes to the primary. A replica that refuses the connection is marked down until its next
good check: reads fall back to the primary, no call fails for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from docgate.db.consistency import lsn_from_pg

log = logging.getLogger(__name__)

_CHECK_TIMEOUT_SECONDS = 2.0
_REPLAYED = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"
_FLUSHED = "SELECT pg_current_wal_flush_lsn()::text"


@dataclass
class Replica:
    name: str  # the URL without its password, for logs
    engine: AsyncEngine
    problem: str | None = "not checked yet"  # None: usable
    replayed: int = 0  # the replay position last seen (it only grows)

    def lost(self, problem: str) -> None:
        """Not reachable: what it had replayed is forgotten too (a standby rebuilt from an older
        backup starts behind what this one reached)."""
        self.replayed = 0
        self.mark(problem)

    def mark(self, problem: str | None) -> None:
        if problem != self.problem:
            if problem is None:
                log.info("read replica %s: in use", self.name)
            else:
                log.warning("read replica %s: skipped: %s", self.name, problem)
        self.problem = problem


async def _scalar_row(conn: AsyncConnection, sql: str) -> tuple[object, ...]:
    row = (await conn.exec_driver_sql(sql)).one()
    return tuple(row)


class ReadReplicas:
    def __init__(
        self,
        primary: AsyncEngine,
        replicas: Sequence[Replica],
        max_lag_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._primary = primary
        self.replicas = tuple(replicas)
        self._max_lag = max_lag_seconds
        self._clock = clock
        self._flushed: deque[tuple[float, int]] = deque()  # (when, primary's flushed LSN)
        self._next = 0

    @property
    def configured(self) -> bool:
        return bool(self.replicas)

    async def connect(self, read_after: int | None) -> AsyncConnection | None:
        """A connection to the next usable replica that has replayed ``read_after`` (when
        given), or None: read from the primary."""
        count = len(self.replicas)
        start, self._next = self._next, (self._next + 1) % max(count, 1)
        for step in range(count):
            replica = self.replicas[(start + step) % count]
            if replica.problem is None:
                conn = await self._connect(replica, read_after)
                if conn is not None:
                    return conn
        return None

    async def _connect(self, replica: Replica, read_after: int | None) -> AsyncConnection | None:
        try:
            conn = await replica.engine.connect()
        except Exception as exc:  # refused, reset, timed out: skip it until it checks good
            replica.lost(f"connection failed: {type(exc).__name__}")
            return None
        if read_after is None or replica.replayed >= read_after:
            return conn
        try:
            (replayed,) = await _scalar_row(conn, "SELECT pg_last_wal_replay_lsn()::text")
        except Exception as exc:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            replica.lost(f"query failed: {type(exc).__name__}")
            return None
        if replayed is None:  # promoted meanwhile: no longer anyone's standby
            await conn.close()
            replica.lost("not a standby (pg_is_in_recovery() is false)")
            return None
        replica.replayed = max(replica.replayed, lsn_from_pg(str(replayed)))
        if replica.replayed >= read_after:
            return conn
        await conn.close()
        return None

    async def watch(self, interval: float) -> None:
        """Check every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # a bug here must not stop the checks for good
                log.exception("read replicas: check failed")

    async def refresh(self) -> None:
        """One round of checks: sample the primary, then ask every replica."""
        if not self.replicas:
            return
        now = self._clock()
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS), self._primary.connect() as conn:
                flushed = (await _scalar_row(conn, _FLUSHED))[0]
            self._flushed.append((now, lsn_from_pg(str(flushed))))
        except Exception as exc:  # the primary's own health is the health check's business
            log.debug("read replicas: primary position not sampled: %r", exc)
        while self._flushed and now - self._flushed[0][0] > self._max_lag:
            self._flushed.popleft()
        await asyncio.gather(*(self._check(replica) for replica in self.replicas))

    async def _check(self, replica: Replica) -> None:
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT_SECONDS), replica.engine.connect() as conn:
                in_recovery, replayed = await _scalar_row(conn, _REPLAYED)
        except Exception as exc:
            replica.lost(f"not answering: {type(exc).__name__}")
            return
        if not in_recovery or replayed is None:
            replica.mark("not a standby (pg_is_in_recovery() is false)")
            return
        replica.replayed = max(replica.replayed, lsn_from_pg(str(replayed)))
        if not any(lsn <= replica.replayed for _, lsn in self._flushed):
            replica.mark(f"behind every primary position of the last {self._max_lag:g}s")
            return
        replica.mark(None)

    async def dispose(self) -> None:
        for replica in self.replicas:
            await replica.engine.dispose()
