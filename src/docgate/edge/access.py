"""The access log: one INFO record per call on the ``docgate.access`` logger, written in batches.

A call's end only notes its fields (method, code, duration_ms, user_id, peer, request_id and
the time it ended); the records are made and handed to the logger a batch at a time, from the
event loop but outside any call:

* when `BATCH` calls are waiting (on the loop's next turn), or
* `DELAY_SECONDS` after the first of them ended, whichever comes first, and
* when the app closes (`flush`: every shutdown path, docgate.bootstrap.App.close).

Why: measured in the server under load, making and formatting a JSON record one call at a time
takes ~64 µs (8% of a GetDocument's CPU); the same records made in a row take ~37 µs each,
since the logging and JSON code stay warm in the CPU's caches (bench/README.md, "Observed
mode"). What a record says does not change: it is a standard LogRecord, handled by the
logger's handlers and filters as any other, its ``created`` time is the call's end (not the
batch's) and its ``request_id`` the call's own (docgate.edge.requests.RequestIdFilter keeps a
record's id when it already has one). The cost of the batching: a record reaches the log up to
`DELAY_SECONDS` after its call answered, possibly after a WARNING that the same call logged
(both carry the call's request id and time), and a process killed without a shutdown
(SIGKILL, a crash) loses the records of at most its last `DELAY_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from typing import Final

BATCH: Final = 32
DELAY_SECONDS: Final = 0.05
_FORMAT: Final = "%s %s %.1fms user=%s peer=%s"
# (ended: time.time(), method, code name, duration_ms, user_id, peer, request_id)
_Entry = tuple[float, str, str, float, str, str, str]


class AccessLog:
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger if logger is not None else logging.getLogger("docgate.access")
        self._pending: list[_Entry] = []
        self._timer: asyncio.TimerHandle | None = None
        self._soon: asyncio.Handle | None = None

    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def add(
        self,
        method: str,
        code: str,
        duration_ms: float,
        user_id: str,
        peer: str,
        request_id: str,
    ) -> None:
        """Note one finished call; its record is written with the next batch."""
        pending = self._pending
        pending.append((time.time(), method, code, duration_ms, user_id, peer, request_id))
        if len(pending) >= BATCH:
            if self._soon is None:
                # A fresh, empty context: the batch is no call's (not the one that filled it).
                self._soon = _loop().call_soon(self.flush, context=contextvars.Context())
        elif self._timer is None:
            self._timer = _loop().call_later(
                DELAY_SECONDS, self.flush, context=contextvars.Context()
            )

    def flush(self) -> None:
        """Write every noted call's record now."""
        for handle in (self._timer, self._soon):
            if handle is not None:
                handle.cancel()
        self._timer = self._soon = None
        pending, self._pending = self._pending, []
        logger = self._logger
        for ended, method, code, duration_ms, user_id, peer, request_id in pending:
            record = logger.makeRecord(
                logger.name,
                logging.INFO,
                __file__,
                0,
                _FORMAT,
                (method, code, duration_ms, user_id, peer),
                None,
                extra={
                    "method": method,
                    "code": code,
                    "duration_ms": duration_ms,
                    "user_id": user_id,
                    "peer": peer,
                    "request_id": request_id,
                },
            )
            record.relativeCreated += (ended - record.created) * 1000
            record.created = ended
            record.msecs = int((ended - int(ended)) * 1000) + 0.0
            logger.handle(record)


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()
