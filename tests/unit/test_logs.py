"""Log records are bounded, and statement parameters never reach one (issue 11 finding 3)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator

import pytest

from docgate import logs
from docgate.config import Settings
from docgate.db.engine import create_engine
from tests.support import RecordingStream


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


@contextlib.contextmanager
def _root_handler(handler: logging.Handler) -> Iterator[logging.Logger]:
    """``handler`` on the root logger (where docgate.logs.one_write looks), and a child logger
    at INFO that reaches it."""
    logger = logging.getLogger(f"t.held{id(handler)}")
    logger.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    try:
        yield logger
    finally:
        logging.getLogger().removeHandler(handler)


def test_held_lines_are_written_in_one_write_when_the_hold_ends() -> None:
    stream = RecordingStream()
    handler = logs.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    with _root_handler(handler) as logger:
        logger.info("before")  # not held: its own write, at once
        assert stream.writes == ["INFO before\n"]
        with logs.one_write():
            for n in range(3):
                logger.info("line %d", n)
            logger.warning("a warning")
            assert stream.writes == ["INFO before\n"]  # held
        logger.info("after")
    assert stream.writes == [
        "INFO before\n",
        "INFO line 0\nINFO line 1\nINFO line 2\nWARNING a warning\n",
        "INFO after\n",
    ]


def test_an_inner_hold_leaves_the_lines_to_the_outer_one_and_a_failure_still_writes() -> None:
    stream = RecordingStream()
    handler = logs.StreamHandler(stream)
    with _root_handler(handler) as logger, pytest.raises(RuntimeError), logs.one_write():
        logger.info("a")
        with logs.one_write():
            logger.info("b")
        assert stream.writes == []  # the inner end wrote nothing
        raise RuntimeError("the batch failed")
    assert stream.writes == ["a\nb\n"]


def test_the_time_of_a_record_is_the_standard_formatters_to_the_millisecond() -> None:
    standard = logging.Formatter()
    for made in (logs.formatter("text"), logs.formatter("json")):
        for created in (1e9 + 0.001, 1e9 + 0.999, 1e9 + 1.0, 1e9 + 1.5, 1e9 + 3600.25, 1e9):
            record = _record("x")
            record.created, record.msecs = created, int((created % 1) * 1000) + 0.0
            assert made.formatTime(record) == standard.formatTime(record)
            assert made.formatTime(record, "%H:%M") == standard.formatTime(record, "%H:%M")
        made.converter = time.gmtime  # type: ignore[method-assign]
        record = _record("x")
        assert (
            made.formatTime(record)
            == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created))
            + f",{int(record.msecs):03d}"
        )
