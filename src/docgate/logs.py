"""Log records that are safe to ship: bounded in size.

`BoundedRecords` is a handler filter (installed next to the request-id filter): it renders a
record's message once and cuts it at `MAX_MESSAGE` characters, and keeps only the last
`MAX_TRACEBACK` characters of a traceback (its innermost frames, the ones that say what
failed). Request data never reaches a record in the first place — the engine hides statement
parameters, and no docgate log line formats a token, an e-mail address or content — this
bounds what a hostile caller could still make a library log.
"""

from __future__ import annotations

import logging
import traceback
from typing import Final

MAX_MESSAGE: Final = 2048
MAX_TRACEBACK: Final = 2048
_CUT: Final = " …[cut]"


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
