"""Log records are bounded, and statement parameters never reach one (issue 11 finding 3)."""

from __future__ import annotations

import logging

from docgate import logs
from docgate.config import Settings
from docgate.db.engine import create_engine


def _record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("t", logging.ERROR, __file__, 1, message, args, exc_info)


def test_long_messages_and_tracebacks_are_cut() -> None:
    record = _record("%s", "x" * 100_000)
    try:
        raise ValueError("y" * 100_000)
    except ValueError as error:
        failing = _record("boom", exc=error)
    bounded = logs.BoundedRecords()
    for item in (record, failing):
        assert bounded.filter(item)
        text = logging.Formatter().format(item)
        assert len(text) <= logs.MAX_MESSAGE + logs.MAX_TRACEBACK + 64
    assert "ValueError" in logging.Formatter().format(failing)


def test_short_records_pass_unchanged() -> None:
    record = _record("user %s did %s", "a", "b")
    logs.BoundedRecords().filter(record)
    assert logging.Formatter().format(record) == "user a did b"


def test_the_engine_hides_statement_parameters() -> None:
    engine = create_engine("postgresql://u@localhost/db", Settings(jwt_secret="s" * 40))
    assert engine.sync_engine.hide_parameters
