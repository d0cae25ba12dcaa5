"""SIGTERM to `docgate serve` — one process, or the parent of `--workers 2` — while writes are
provably in flight: every one of them finishes (OK, the write applied), a call that arrives
once the server stops is refused, and the process exits 0 with no error logged.

In flight, deterministically: the test holds a row lock (``SELECT … FOR UPDATE`` from its own
connection) on the documents the calls update, so each UpdateDocument waits inside the server,
in PostgreSQL, until the test lets go. pg_stat_activity confirms they wait (blocked by the
test's own backend), x-docgate-worker says which process answered each, and the kernel
(/proc/net/tcp) says when the port stopped listening.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb
from docgate.v1 import documents_pb2_grpc
from google.protobuf import field_mask_pb2
from sqlalchemy.engine import make_url

from tests.e2e.test_cli import TIMEOUT, _env
from tests.e2e.test_workers import _admin_token, serving
from tests.support import unique

CALLS_PER_PROCESS = 3
WORKER_HEADER = "x-docgate-worker"


def _dsn(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=False)


async def _blocked_by(watcher: asyncpg.Connection, locker_pid: int) -> int:
    """How many docgate backends wait for a lock the test's backend holds."""
    count: int = await watcher.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'docgate' "
        "AND wait_event_type = 'Lock' AND $1 = ANY(pg_blocking_pids(pid))",
        locker_pid,
    )
    return count


async def _until(predicate: object, what: str) -> None:
    for _ in range(TIMEOUT * 20):
        result = predicate() if callable(predicate) else predicate
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")


def _listening(port: int) -> bool:
    """Whether any socket on this machine listens on ``port`` (the kernel's view)."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(wanted) and fields[3] == "0A":  # 0A: LISTEN
                return True
    return False


async def _channel_per_process(
    port: int, metadata: tuple[tuple[str, str], ...], pids: set[int]
) -> tuple[dict[int, grpc.aio.Channel], list[grpc.aio.Channel]]:
    """One open channel (its own connection) to each of ``pids``; with a single process,
    which sends no x-docgate-worker, the one channel is filed under its pid. Also returns
    every channel opened, to close."""
    opened: list[grpc.aio.Channel] = []
    by_pid: dict[int, grpc.aio.Channel] = {}
    for _ in range(200):
        channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        opened.append(channel)
        call = documents_pb2_grpc.DocumentServiceStub(channel).ListDocuments(
            pb.ListDocumentsRequest(page_size=1), metadata=metadata, timeout=10
        )
        await call
        header = dict(await call.initial_metadata()).get(WORKER_HEADER)
        pid = int(str(header).split("/")[1]) if header is not None else next(iter(pids))
        by_pid.setdefault(pid, channel)
        if set(by_pid) == pids:
            break
    assert set(by_pid) == pids
    return by_pid, opened


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
async def test_sigterm_lets_in_flight_calls_finish(database_url: str, workers: int) -> None:
    # A grace far longer than the test waits: a drain that cuts calls off fails here, not a clock.
    env = _env(
        database_url,
        DOCGATE_LISTEN="127.0.0.1:0",
        DOCGATE_WORKERS=str(workers),
        DOCGATE_GRACE_SECONDS="120",
    )
    _, token = await _admin_token(env)
    metadata = (("authorization", f"Bearer {token}"),)
    locker = await asyncpg.connect(_dsn(database_url))
    watcher = await asyncpg.connect(_dsn(database_url))
    opened: list[grpc.aio.Channel] = []
    try:
        async with serving(env, workers=workers > 1) as served:
            pids = served.worker_pids() if workers > 1 else {served.proc.pid}
            assert len(pids) == workers
            by_pid, opened = await _channel_per_process(served.port, metadata, pids)
            stubs = {pid: documents_pb2_grpc.DocumentServiceStub(c) for pid, c in by_pid.items()}
            any_stub = next(iter(stubs.values()))
            planned: list[tuple[int, str, str]] = []  # (pid sent to, document id, new title)
            for pid in sorted(stubs):
                for _ in range(CALLS_PER_PROCESS):
                    made = await any_stub.CreateDocument(
                        pb.CreateDocumentRequest(document=pb.Document(title=unique("before"))),
                        metadata=metadata,
                        timeout=10,
                    )
                    planned.append((pid, made.id, unique("after")))
            ids = [doc_id for _, doc_id, _ in planned]

            lock = locker.transaction()
            await lock.start()
            await locker.execute(
                "SELECT 1 FROM documents WHERE id = ANY($1::uuid[]) FOR UPDATE", ids
            )
            locker_pid = await locker.fetchval("SELECT pg_backend_pid()")
            in_flight = [
                stubs[pid].UpdateDocument(
                    pb.UpdateDocumentRequest(
                        document=pb.Document(id=doc_id, title=title),
                        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
                    ),
                    metadata=metadata,
                    timeout=TIMEOUT * 2,
                )
                for pid, doc_id, title in planned
            ]
            waiting = len(planned)
            await _until(
                lambda: _counts(watcher, locker_pid, waiting),
                f"{waiting} UpdateDocument calls wait on the test's lock",
            )

            served.proc.send_signal(signal.SIGTERM)
            await _until(
                lambda: "".join(served.log).count("shutting down (grace 120.0s)") == workers,
                "every serving process logs that it is shutting down",
            )
            await _until(lambda: not _listening(served.port), "the port no longer listens")
            async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as late:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await documents_pb2_grpc.DocumentServiceStub(late).GetDocument(
                        pb.GetDocumentRequest(id=ids[0]), metadata=metadata, timeout=10
                    )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            # Still every one of them in flight: nothing was cut off while the server stopped.
            assert await _blocked_by(watcher, locker_pid) == waiting
            assert served.proc.returncode is None

            await lock.rollback()  # let go: the in-flight calls may now finish
            replies = await asyncio.wait_for(asyncio.gather(*in_flight), TIMEOUT)
            assert [r.title for r in replies] == [title for _, _, title in planned]
            if workers > 1:  # each answered by the worker its connection reached
                answered = [
                    int(str(dict(await call.initial_metadata())[WORKER_HEADER]).split("/")[1])
                    for call in in_flight
                ]
                assert answered == [pid for pid, _, _ in planned]
            assert await asyncio.wait_for(served.proc.wait(), TIMEOUT) == 0
        rows = await watcher.fetch("SELECT id::text, title FROM documents WHERE id = ANY($1)", ids)
        assert dict(rows) == {doc_id: title for _, doc_id, title in planned}  # applied, committed
    finally:
        for channel in opened:
            await channel.close()
        await locker.close()
        await watcher.close()
    log = "".join(served.log)
    assert " ERROR " not in log, log
    assert "Traceback" not in log, log
    assert log.count("stopped") >= 1


async def _counts(watcher: asyncpg.Connection, locker_pid: int, wanted: int) -> bool:
    return await _blocked_by(watcher, locker_pid) == wanted
