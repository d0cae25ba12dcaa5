"""Log records that are safe to ship (bounded in size), written as text or JSON.

`configure` sets the root handler's format and level from DOCGATE_LOG_FORMAT and
DOCGATE_LOG_LEVEL: ``text`` is one line per record (`TEXT_FORMAT`), ``json`` one JSON object
per line by python-json-logger's orjson formatter (time, level, logger, request_id, message, an
``exc_info`` traceback when there is one, and every ``extra`` field — the access log's method,
code, duration_ms, user_id and peer). orjson rather than the standard library's encoder: it
makes a whole access record a quarter cheaper (bench/README.md, "Observed mode"); the one
string it refuses, a lone surrogate (an undecodable file name in an OSError, say), gets the
standard encoder instead of costing the record (`JsonFormatter`).

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
import traceback
from typing import Any, Final

from pythonjsonlogger.orjson import OrjsonFormatter

MAX_MESSAGE: Final = 2048
MAX_TRACEBACK: Final = 2048
_CUT: Final = " …[cut]"
# request_id is stamped by docgate.edge.requests.RequestIdFilter ("-" outside any call).
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_JSON_FIELDS: Final = ("asctime", "levelname", "name", "request_id", "message")
_JSON_NAMES: Final = {"asctime": "time", "levelname": "level", "name": "logger"}


class JsonFormatter(OrjsonFormatter):
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
    return logging.Formatter(TEXT_FORMAT)


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
