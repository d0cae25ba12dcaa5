"""docgate.edge.access: access records are noted at a call's end and written in batches — each
with its own call's time and request id, none lost, none twice."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
import uuid

import grpc

from docgate import logs
from docgate.edge import batches
from docgate.edge.access import AccessLog
from docgate.edge.requests import bind_request_id, install_request_id_filter, reset_request_id
from tests.support import RecordingHandler, RecordingStream


def _recording() -> tuple[AccessLog, RecordingHandler, logging.Logger]:
    logger = logging.getLogger(f"docgate.access.test{time.monotonic_ns()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = RecordingHandler()
    install_request_id_filter([handler])  # what `docgate serve` puts on its handlers
    logger.addHandler(handler)
    return AccessLog(logger), handler, logger


def _note(log: AccessLog, n: int, request_id: str = "r") -> None:
    log.add(
        "/docgate.v1.UserService/GetCurrentUser",
        grpc.StatusCode.OK,
        0.0015,
        "u-1",
        "ipv4:1.2.3.4:5",
        f"{request_id}{n}",
    )


async def test_a_record_waits_for_its_batch_and_keeps_its_calls_time() -> None:
    log, handler, _ = _recording()
    before = time.time()
    _note(log, 1)
    after = time.time()
    assert handler.records == []  # noted, not yet written
    log.flush()
    (record,) = handler.records
    assert before <= record.created <= after  # the call's end, not the flush's
    assert record.msecs == int((record.created % 1) * 1000)
    assert record.getMessage() == (
        "/docgate.v1.UserService/GetCurrentUser OK 1.5ms user=u-1 peer=ipv4:1.2.3.4:5"
    )
    fields = {k: getattr(record, k) for k in ("method", "code", "duration_ms", "user_id", "peer")}
    assert fields == {
        "method": "/docgate.v1.UserService/GetCurrentUser",
        "code": "OK",
        "duration_ms": 1.5,
        "user_id": "u-1",
        "peer": "ipv4:1.2.3.4:5",
    }
    log.flush()  # nothing twice
    assert len(handler.records) == 1


async def test_the_delay_writes_a_lone_record_without_a_flush() -> None:
    log, handler, _ = _recording()
    _note(log, 1)
    for _ in range(200):
        if handler.records:
            break
        await asyncio.sleep(batches.DELAY_SECONDS / 2)
    assert [r.request_id for r in handler.records] == ["r1"]  # type: ignore[attr-defined]


async def test_a_full_batch_is_written_on_the_next_turn_each_with_its_own_request_id() -> None:
    log, handler, _ = _recording()
    # Note the calls as the calls themselves do: each inside its own request's context; the
    # batch is then written outside all of them, and every record must keep its own id.
    for n in range(batches.SIZE):
        tokens = bind_request_id(f"call-{n}", "/m")
        try:
            _note(log, n, "call-")
        finally:
            reset_request_id(tokens)
    assert handler.records == []
    await asyncio.sleep(0)  # the loop's next turn, long before DELAY_SECONDS
    await asyncio.sleep(0)
    ids = [r.request_id for r in handler.records]  # type: ignore[attr-defined]
    assert ids == [f"call-{n}" for n in range(batches.SIZE)]


async def test_the_batch_is_written_outside_the_call_that_filled_it() -> None:
    log, handler, _ = _recording()
    seen: list[str | None] = []

    class Spy(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            from docgate.calls import current_request_id

            seen.append(current_request_id())
            return True

    handler.addFilter(Spy())
    tokens = bind_request_id("the-filler", "/m")
    try:
        for n in range(batches.SIZE):
            _note(log, n)
    finally:
        reset_request_id(tokens)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(seen) == batches.SIZE
    assert set(seen) == {None}


async def test_enabled_follows_the_loggers_level() -> None:
    log, _, logger = _recording()
    logger.setLevel(logging.WARNING)
    assert not log.enabled()
    logger.setLevel(logging.INFO)
    assert log.enabled()


def test_flush_outside_a_loop_writes_what_is_noted() -> None:
    log, handler, _ = _recording()

    async def note() -> None:
        _note(log, 7)

    contextvars.copy_context().run(asyncio.run, note())
    log.flush()  # the loop is gone (a shutdown after it): the record is still written
    assert [r.request_id for r in handler.records] == ["r7"]  # type: ignore[attr-defined]


def test_every_record_of_a_batch_is_a_whole_logrecord_with_its_own_fields() -> None:
    log, handler, logger = _recording()
    noted: list[tuple[float, float]] = []
    for n in range(3):
        code = grpc.StatusCode.OK if n else grpc.StatusCode.NOT_FOUND
        before = time.time()
        log.add("/m", code, n / 1000, uuid.UUID(int=n) if n else None, f"peer-{n}", f"r{n}")
        noted.append((before, time.time()))
        time.sleep(0.002)
    log.flush()
    made = logger.makeRecord(logger.name, logging.INFO, __file__, 0, "x", (), None)
    users = ["-", str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]
    first, *copies = handler.records
    for n, record in enumerate(handler.records):
        assert isinstance(record, logging.LogRecord)
        assert set(made.__dict__) <= set(record.__dict__)  # every attribute logging sets
        assert record.getMessage() == (
            f"/m {'OK' if n else 'NOT_FOUND'} {float(n):.1f}ms user={users[n]} peer=peer-{n}"
        )
        assert (record.user_id, record.peer, record.request_id) == (  # type: ignore[attr-defined]
            users[n],
            f"peer-{n}",
            f"r{n}",
        )
        assert (record.name, record.levelno, record.process) == (
            logger.name,
            logging.INFO,
            made.process,
        )
        assert noted[n][0] <= record.created <= noted[n][1]  # its own call's time
        assert record.msecs == int((record.created % 1) * 1000)
        assert record.duration_ms == float(n)  # type: ignore[attr-defined]
    assert all(r.__dict__.keys() == first.__dict__.keys() for r in copies)


def test_a_record_factory_of_someone_elses_makes_every_record() -> None:
    log, handler, _ = _recording()
    made_by_factory: list[logging.LogRecord] = []
    default = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = default(*args, **kwargs)  # type: ignore[arg-type]
        record.trace_id = "t-1"
        made_by_factory.append(record)
        return record

    logging.setLogRecordFactory(factory)
    try:
        for n in range(3):
            _note(log, n)
        log.flush()
    finally:
        logging.setLogRecordFactory(default)
    assert handler.records == made_by_factory
    assert [r.trace_id for r in handler.records] == ["t-1"] * 3  # type: ignore[attr-defined]


async def test_a_batch_reaches_the_log_in_one_write() -> None:
    stream = RecordingStream()
    handler = logs.StreamHandler(stream)  # the handler `docgate serve` logs through
    handler.setFormatter(logs.formatter("json"))
    install_request_id_filter([handler])
    logger = logging.getLogger(f"docgate.access.test{time.monotonic_ns()}")
    logger.setLevel(logging.INFO)  # propagates to the root logger's handlers
    logging.getLogger().addHandler(handler)
    try:
        log = AccessLog(logger)
        for n in range(5):
            _note(log, n)
        assert stream.writes == []
        await asyncio.sleep(batches.DELAY_SECONDS * 2)  # the batch, written by its timer
    finally:
        logging.getLogger().removeHandler(handler)
    assert len(stream.writes) == 1
    lines = [json.loads(line) for line in stream.writes[0].splitlines()]
    assert [line["request_id"] for line in lines] == [f"r{n}" for n in range(5)]
