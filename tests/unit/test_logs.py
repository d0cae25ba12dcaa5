"""Log records are bounded, and statement parameters never reach one (issue 11 finding 3)."""

from __future__ import annotations

import json
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


def test_a_json_line_is_one_object_with_the_records_fields() -> None:
    record = _record("user %s did %s", "a", "b")
    record.request_id = "r-1"
    record.duration_ms = 1.5
    line = logs.formatter("json").format(record)
    assert "\n" not in line
    assert json.loads(line) == {
        "time": json.loads(line)["time"],
        "level": "ERROR",
        "logger": "t",
        "request_id": "r-1",
        "message": "user a did b",
        "duration_ms": 1.5,
    }


def test_a_string_orjson_refuses_still_gets_its_json_line() -> None:
    # A lone surrogate: what os.fsdecode makes of an undecodable file name, in an OSError.
    record = _record("cannot open %s", "/data/caf\udce9")
    record.request_id = "r-2"
    line = logs.formatter("json").format(record)
    decoded = json.loads(line)
    assert decoded["message"] == "cannot open /data/caf\udce9"
    assert decoded["request_id"] == "r-2"
