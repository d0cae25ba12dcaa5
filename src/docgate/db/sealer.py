"""The audit trail's background sealer: one task per serving process, one connection of its own.

A write commits its audit entry unsealed (docgate.db.audit). `AuditSealer` seals committed
entries soon after, in batches: the unit of work calls `poke()` after every commit that wrote an
entry; the task waits ``debounce_seconds`` (so a burst of commits becomes one batch) and runs
``audit_seal_pending`` with ``pg_try_advisory_xact_lock``, so sealers of other processes (the
workers of ``serve --workers N``, other replicas of the service) never queue behind each other:
when another one holds the chain it tries again after the debounce, and whoever holds it seals
what is pending. Besides the pokes it seals at start and every ``interval_seconds`` (the safety
net for entries committed by a process that stopped before sealing them: a crash, a CLI command
killed mid-way) and once more on `close()`.

Its connection (application_name ``docgate-sealer``) comes from an engine of its own, outside
the RPCs' pool, so sealing never waits for a pooled connection and never holds one. Failures
(the database is down) are logged once per outage and retried at the next tick; nothing is lost,
since what is pending stays in the table until some sealer seals it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from docgate.db import audit

log = logging.getLogger(__name__)

APPLICATION_NAME = "docgate-sealer"


class AuditSealer:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        interval_seconds: float = 1.0,
        debounce_seconds: float = 0.01,
    ) -> None:
        self._engine = engine
        self.interval_seconds = interval_seconds
        self.debounce_seconds = debounce_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._closed = False
        # Counters for tests and operators: entries sealed by this process, seal statements
        # run, and tries that found the chain held by another sealer.
        self.sealed = 0
        self.rounds = 0
        self.busy = 0
        # Notified after every seal statement; tests wait on it (never on time).
        self.changed = asyncio.Condition()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the task (idempotent; needs a running event loop). It seals at once."""
        if self._task is None and not self._closed:
            # A context of its own: started from inside a call, it must not carry that call's
            # request id or caller into its log lines for the rest of its life.
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="docgate-audit-sealer", context=contextvars.Context()
            )

    def poke(self) -> None:
        """A transaction that wrote an entry committed: seal it soon (starts the task)."""
        if self._closed:
            return
        self._wake.set()
        self.start()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, re-checked after every seal statement (tests
        bound it with asyncio.wait_for)."""
        async with self.changed:
            await self.changed.wait_for(predicate)

    async def close(self) -> None:
        """Stop the task, seal once more (a last try of the lock) what this process committed
        since its last seal, and dispose of the sealer's engine (its own); idempotent."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):
                await self._seal_once()
        await self._engine.dispose()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                busy = await self._seal_once() is None
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is away: retry at the next tick
                busy = False
                if not self._failing:
                    log.warning("audit sealer: %s; retrying", error.__class__.__name__)
                self._failing = True
            if busy:  # another sealer has the chain; what it did not see, the next try seals
                self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_seconds)
            if self.debounce_seconds > 0:
                await asyncio.sleep(self.debounce_seconds)

    async def _seal_once(self) -> int | None:
        """Seal what is pending, batch after batch; None when the chain was held elsewhere."""
        total = 0
        async with self._engine.connect() as connection:
            while True:
                sealed = await audit.seal(connection, wait=False)
                await self._count(sealed)
                if sealed is None:
                    return None
                total += sealed
                if sealed < audit.SEAL_BATCH:
                    if self._failing:
                        log.info("audit sealer: sealing again")
                        self._failing = False
                    return total

    async def _count(self, sealed: int | None) -> None:
        self.rounds += 1
        if sealed is None:
            self.busy += 1
        else:
            self.sealed += sealed
        async with self.changed:
            self.changed.notify_all()
