"""Log records that are safe to ship (bounded in size), written as text or JSON.

`configure` sets the root handler's format and level from DOCGATE_LOG_FORMAT and
DOCGATE_LOG_LEVEL: ``text`` is one line per record (`TEXT_FORMAT`), ``json`` one JSON object
per line by python-json-logger's orjson formatter (time, level, logger, request_id, message, an
``exc_info`` traceback when there is one, and every ``extra`` field — the access log's method,
code, duration_ms, user_id and peer). orjson rather than the standard library's encoder: it
makes a whole access record a quarter cheaper (bench/README.md, "Observed mode"); the one
string it refuses, a lone surrogate (an undecodable file name in an OSError, say), gets the
standard encoder instead of costing the record (`JsonFormatter`).

The process's log handler is `StreamHandler` (stderr), logging's own with one addition: inside
`one_write()` it holds the lines it formats and writes them together at the end. A batch of
access records (docgate.edge.batches) is then one write to the log, not one per record (a
syscall each: ~2 µs of a record's ~13 in a microbenchmark). Both formatters format a second's
date and time once (`_SecondCache`): a batch's records mostly share it.

`BoundedRecords` is a handler filter (installed next to the request-id filter): it renders a
record's message once and cuts it at `MAX_MESSAGE` characters, and keeps only the last
`MAX_TRACEBACK` characters of a traceback (its innermost frames, the ones that say what
failed). Request data never reaches a record in the first place — the engine hides statement
parameters, and no docgate log line formats a token, an e-mail address or content — this
bounds what a hostile caller could still make a library log.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from pythonjsonlogger.orjson import OrjsonFormatter

MAX_MESSAGE: Final = 2048
MAX_TRACEBACK: Final = 2048
_CUT: Final = " …[cut]"
# request_id is stamped by docgate.edge.requests.RequestIdFilter ("-" outside any call).
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_JSON_FIELDS: Final = ("asctime", "levelname", "name", "request_id", "message")
_JSON_NAMES: Final = {"asctime": "time", "levelname": "level", "name": "logger"}


class _SecondCache(logging.Formatter):
    """`logging.Formatter.formatTime`'s default text, with the date and time of each second
    formatted once (``time.strftime``: about 1 µs a record) rather than once a record."""

    _second: tuple[int, str] | None = None

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt or not self.default_msec_format:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second
        if cached is None or cached[0] != second:
            text = time.strftime(self.default_time_format, self.converter(second))
            cached = self._second = (second, text)
        return self.default_msec_format % (cached[1], record.msecs)


class TextFormatter(_SecondCache):
    """logging's Formatter (`TEXT_FORMAT`), its time text formatted once a second."""


class JsonFormatter(_SecondCache, OrjsonFormatter):
    """python-json-logger's orjson formatter, with the standard library's encoder for a record
    orjson cannot encode (a str holding a lone surrogate) rather than losing it."""

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        try:
            return super().jsonify_log_record(log_data)
        except TypeError:  # with the formatter's own default for values JSON has no type for
            return json.dumps(log_data, default=self.json_default)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(list(_JSON_FIELDS), style="{", rename_fields=dict(_JSON_NAMES))
    return TextFormatter(TEXT_FORMAT)


class StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """logging's StreamHandler (stderr by default), whose lines `one_write` can hold and write
    in one go. Held lines are formatted when they are logged, in order, whatever thread logs
    them; they are written when the outermost `one_write` ends, even if its body raised."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._held: list[str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        held = self._held
        if held is None:
            super().emit(record)
            return
        try:
            held.append(self.format(record) + self.terminator)
        except RecursionError:  # as logging's own emit: a recursion is not a log problem
            raise
        except Exception:
            self.handleError(record)

    def hold_lines(self) -> bool:
        """Hold the lines from now on; False if they already are (an enclosing hold)."""
        with self.lock:  # type: ignore[union-attr]
            if self._held is not None:
                return False
            self._held = []
            return True

    def write_held(self) -> None:
        """Write the held lines, in one write and one flush, and each new one at once again.
        (Not ``release``: that is logging's name for unlocking a handler.)"""
        with self.lock:  # type: ignore[union-attr]
            lines, self._held = self._held, None
            if not lines:
                return
            try:
                self.stream.write("".join(lines))
                self.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": f"{len(lines)} held log lines"}))


@contextmanager
def one_write() -> Iterator[None]:
    """Within: the root logger's `StreamHandler`s hold their lines, written together at the end."""
    root = logging.getLogger()
    holding = [h for h in root.handlers if isinstance(h, StreamHandler) and h.hold_lines()]
    try:
        yield
    finally:
        for handler in holding:
            handler.write_held()


def configure(handlers: list[logging.Handler], log_format: str, level: str) -> None:
    """Format ``handlers`` (the root logger's) as ``log_format``; set the root level."""
    for handler in handlers:
        handler.setFormatter(formatter(log_format))
    logging.getLogger().setLevel(level)


class BoundedRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + _CUT
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info = None
        if record.exc_text and len(record.exc_text) > MAX_TRACEBACK:
            lines = [_short(line) for line in record.exc_text.splitlines()]
            text = "\n".join(lines)
            record.exc_text = (
                text if len(text) <= MAX_TRACEBACK else "[cut]…" + text[-MAX_TRACEBACK:]
            )
        return True


def _short(line: str) -> str:
    """One traceback line, at most a quarter of the budget (the exception's own line can carry
    a whole request's worth of text)."""
    limit = MAX_TRACEBACK // 4
    return line if len(line) <= limit else line[:limit] + _CUT


def install(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        if not any(isinstance(f, BoundedRecords) for f in handler.filters):
            handler.addFilter(BoundedRecords())
