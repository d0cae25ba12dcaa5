"""What calls only note, written a batch at a time: the access log's records
(docgate.edge.access) and the Prometheus updates (docgate.edge.metrics).

Measured in the server under load, the same logging and prometheus-client code costs about
twice as much run once per call, between a call's other work, as run for many calls in a row
(bench/README.md, "Observed mode"): the caches stay warm. So a call only notes what happened
(an append, ~1 µs), and a `Batcher` runs its writers on the event loop, outside any call:

* on the loop's next turn, once a writer holds `SIZE` calls' notes (`noted`),
* `DELAY_SECONDS` after the first note (`soon`), whichever comes first, and
* on `flush`: every shutdown (docgate.bootstrap.App.close) and every scrape of /metrics
  (docgate.edge.metrics), so what a scrape or the last log lines show is complete.

The log lines a batch makes reach the log in one write (docgate.logs.one_write). Each run gets
a fresh, empty context: a batch is no call's (not the one that filled it).
Outside a running loop (a shutdown after it, a test) a note is written at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Final

from docgate import logs

SIZE: Final = 32
DELAY_SECONDS: Final = 0.05
# How long a scrape waits for the loop to write what is noted (a loop stuck that long is
# itself the problem the scrape should show, with what was written before).
FLUSH_WAIT_SECONDS: Final = 1.0

log = logging.getLogger(__name__)

Writer = Callable[[], None]


class Batcher:
    def __init__(self) -> None:
        self._writers: list[Writer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._soon: asyncio.Handle | None = None

    def add_writer(self, writer: Writer) -> None:
        """``writer`` writes everything its owner has noted; it runs with each batch."""
        self._writers.append(writer)

    def noted(self, pending: int) -> None:
        """A writer now holds ``pending`` calls' notes: write them on the loop's next turn once
        that is `SIZE`, else within `DELAY_SECONDS`."""
        if pending >= SIZE:
            self._full()
        else:
            self.soon()

    def soon(self) -> None:
        """Something was noted: write it within `DELAY_SECONDS`."""
        if self._timer is None and self._soon is None:
            loop = self._loop_else_flush()
            if loop is not None:
                context = contextvars.Context()
                self._timer = loop.call_later(DELAY_SECONDS, self.flush, context=context)

    def _full(self) -> None:
        if self._soon is None:
            loop = self._loop_else_flush()
            if loop is not None:
                self._soon = loop.call_soon(self.flush, context=contextvars.Context())

    def flush(self) -> None:
        """Write everything noted, now (on the loop's thread, or after the loop is gone)."""
        for handle in (self._timer, self._soon):
            if handle is not None:
                handle.cancel()
        self._timer = self._soon = None
        with logs.one_write():  # the batch's log lines: one write to the log, not one each
            for writer in self._writers:
                try:
                    writer()
                except Exception:  # one writer's failure must not cost the others their batch
                    log.exception("a batch writer failed; its notes are dropped")

    def flush_from_thread(self) -> None:
        """`flush`, asked from another thread (the /metrics server's): run on the loop, wait
        for it at most `FLUSH_WAIT_SECONDS`."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # nothing noted on a loop, or the loop is gone (its close flushed)
        try:
            if asyncio.get_running_loop() is loop:
                self.flush()
                return
        except RuntimeError:
            pass  # not on any loop's thread: the usual case
        done = threading.Event()

        def run() -> None:
            try:
                self.flush()
            finally:
                done.set()

        try:
            loop.call_soon_threadsafe(run, context=contextvars.Context())
        except RuntimeError:
            return  # closed meanwhile
        done.wait(FLUSH_WAIT_SECONDS)

    def _loop_else_flush(self) -> asyncio.AbstractEventLoop | None:
        """The running loop, to schedule a batch on; outside one, the notes are written now
        (and None)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return None
        self._loop = loop
        return loop
