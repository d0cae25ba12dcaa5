"""The access log: one INFO record per call on the ``docgate.access`` logger, written in batches.

A call's end only notes its fields (method, code, duration_ms, user_id, peer, request_id and
the time it ended); the records are made and handed to the logger a batch at a time by a
docgate.edge.batches.Batcher (32 calls, or 50 ms after the first, and at shutdown), from the
event loop but outside any call.

Why: measured in the server under load, making and formatting a JSON record one call at a time
takes ~64 µs (8% of a GetDocument's CPU); the same records made in a row took ~37 µs each,
~29 µs since a batch's records after the first are copies of it and JSON is orjson's. A
batch's lines now reach the log in one write (docgate.logs.one_write): 10.1 µs a record
instead of 13.3 in a microbenchmark; in the server ~25 µs a record plus ~4 µs for its share of
the write (bench/README.md, "Observed mode"). What a record says does not change: it is a
standard LogRecord, handled by the logger's handlers and filters as any other, its ``created``
time is the call's end (not the batch's) and its ``request_id`` the call's own
(docgate.edge.requests.RequestIdFilter keeps a record's id when it already has one). The cost
of the batching: a record reaches the log up to 50 ms after its call answered, possibly after a
WARNING that the same call logged (both carry the call's request id and time), and a process
killed without a shutdown (SIGKILL, a crash) loses the records of at most its last 50 ms.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import grpc

from docgate.edge.batches import Batcher

_FORMAT: Final = "%s %s %.1fms user=%s peer=%s"
# (ended: time.time(), method, code, seconds, user_id or None, peer, request_id)
_Entry = tuple[float, str, grpc.StatusCode, float, object, str, str]


class AccessLog:
    def __init__(
        self, logger: logging.Logger | None = None, batcher: Batcher | None = None
    ) -> None:
        self._logger = logger if logger is not None else logging.getLogger("docgate.access")
        self._pending: list[_Entry] = []
        self._batcher = batcher if batcher is not None else Batcher()
        self._batcher.add_writer(self._write)

    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def add(
        self,
        method: str,
        code: grpc.StatusCode,
        seconds: float,
        user_id: object,
        peer: str,
        request_id: str,
    ) -> None:
        """Note one finished call (``user_id`` None: no caller); its record is written with the
        next batch, which also spells the code, the duration and the user id out."""
        pending = self._pending
        pending.append((time.time(), method, code, seconds, user_id, peer, request_id))
        self._batcher.noted(len(pending))

    def flush(self) -> None:
        """Write every noted call's record now (and whatever else the batcher holds)."""
        self._batcher.flush()

    def _write(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        logger = self._logger
        # One record made as logging makes them; the others are copies of it with their own
        # call's fields and time. Same attributes (the thread, process and task names are the
        # batch's either way), without LogRecord.__init__'s lookups per record. A record factory
        # of someone else's (logging.setLogRecordFactory) makes every record itself.
        first = self._record(pending[0])
        template = first.__dict__.copy()  # before a filter or formatter adds to it
        logger.handle(first)
        if logging.getLogRecordFactory() is not logging.LogRecord:
            for entry in pending[1:]:
                logger.handle(self._record(entry))
            return
        new, record_type = object.__new__, logging.LogRecord
        for entry in pending[1:]:
            ended, args, extra = _fields(entry)
            record = new(record_type)
            fields = record.__dict__
            fields.update(template)  # logging's attributes and the format, as the first has them
            fields.update(extra)
            fields["args"] = args
            _stamp(fields, ended)
            logger.handle(record)

    def _record(self, entry: _Entry) -> logging.LogRecord:
        ended, args, extra = _fields(entry)
        logger = self._logger
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 0, _FORMAT, args, None, extra=extra
        )
        _stamp(record.__dict__, ended)
        return record


def _fields(entry: _Entry) -> tuple[float, tuple[object, ...], dict[str, object]]:
    """A noted call as its record says it: (its end, the message's args, the structured fields)
    — the code's name, milliseconds to the µs, the user id or "-"."""
    ended, method, status, seconds, user, peer, request_id = entry
    code, duration_ms = status.name, round(seconds * 1000, 3)
    user_id = "-" if user is None else str(user)
    extra = {
        "method": method,
        "code": code,
        "duration_ms": duration_ms,
        "user_id": user_id,
        "peer": peer,
        "request_id": request_id,
    }
    return ended, (method, code, duration_ms, user_id, peer), extra


def _stamp(fields: dict[str, Any], ended: float) -> None:
    """The record's time: its call's end (logging stamped it with the batch's)."""
    fields["relativeCreated"] += (ended - fields["created"]) * 1000
    fields["created"] = ended
    fields["msecs"] = int((ended - int(ended)) * 1000) + 0.0
