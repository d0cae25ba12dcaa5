"""Logs that follow a request: DOCGATE_LOG_FORMAT=json through the real `docgate serve`, the
level, and one access-log record per call (docgate.edge.calls, docgate.logs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
from docgate.v1 import documents_pb2, documents_pb2_grpc, users_pb2, users_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from docgate.bootstrap import build_app
from docgate.edge.batches import SIZE as BATCH
from docgate.edge.requests import HEADER, install_request_id_filter
from docgate.server import start_server
from tests.conftest import settings_for
from tests.e2e.test_cli import DOCGATE, TIMEOUT, _env, _run, serving_port
from tests.support import RecordingHandler, expect_error, make_user, unique

ME = users_pb2.GetCurrentUserRequest()


async def _served_log(env: dict[str, str], request_id: str) -> tuple[str, str]:
    """Run `docgate serve`, make one call as a new admin, stop; (its stderr, the user id)."""
    name = unique()
    code, out, err = await _run(env, "users", "create", name, "--email", f"{name}@x.io")
    assert code == 0, err
    token = (await _run(env, "token", name))[1].strip()
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stderr is not None
        port = await serving_port(proc)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            metadata = (("authorization", f"Bearer {token}"), (HEADER, request_id))
            await users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
                ME, metadata=metadata, timeout=10
            )
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.stderr.read(), TIMEOUT)).decode()
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
    return rest, out.strip()


async def test_log_format_json_is_one_object_per_line_with_the_access_record(
    database_url: str,
) -> None:
    env = _env(database_url, DOCGATE_LISTEN="127.0.0.1:0", DOCGATE_LOG_FORMAT="json")
    text, user_id = await _served_log(env, "json-call-1")
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert records, text
    assert {"time", "level", "logger", "request_id", "message"} <= set(records[0])
    access = [r for r in records if r["logger"] == "docgate.access"]
    assert len(access) == 1, access
    record = access[0]
    assert record["request_id"] == "json-call-1"
    assert record["method"] == "/docgate.v1.UserService/GetCurrentUser"
    assert record["code"] == "OK"
    assert isinstance(record["duration_ms"], float)
    assert record["duration_ms"] >= 0
    assert record["user_id"] == user_id
    assert record["peer"].startswith("ipv4:127.0.0.1:")
    assert any(r["message"] == "stopped" and r["request_id"] == "-" for r in records)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _until_serving(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(300):
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"not serving on {target}")


async def test_log_level_warning_keeps_info_out(database_url: str) -> None:
    target = f"127.0.0.1:{_free_port()}"
    env = _env(database_url, DOCGATE_LOG_LEVEL="WARNING", DOCGATE_LISTEN=target)
    # `serve` says where it listens at INFO, and logs every call; at WARNING, nothing.
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await _until_serving(target)
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        text = (await asyncio.wait_for(proc.stderr.read(), TIMEOUT)).decode()
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
    assert " INFO " not in text, text


def _access_records(handler: RecordingHandler) -> list[logging.LogRecord]:
    return [r for r in handler.records if r.name == "docgate.access"]


@contextlib.contextmanager
def _recording_access() -> Iterator[RecordingHandler]:
    """Every docgate.access record while inside (with the request-id filter `serve` installs)."""
    handler = RecordingHandler()
    install_request_id_filter([handler])
    access = logging.getLogger("docgate.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        access.removeHandler(handler)
        access.setLevel(level)


async def _calls(database_url: str, **settings: Any) -> tuple[list[logging.LogRecord], str]:
    with _recording_access() as handler:
        app = build_app(settings_for(database_url, **settings), database_url)
        user = await make_user(app, "free_user")
        running = await start_server(app, "127.0.0.1:0")
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                users = users_pb2_grpc.UserServiceStub(channel)
                await users.GetCurrentUser(ME, metadata=user.metadata, timeout=10)
                await expect_error(
                    users.GetCurrentUser(ME, timeout=10), grpc.StatusCode.UNAUTHENTICATED
                )
                missing = documents_pb2.GetDocumentRequest(id=str(uuid.uuid4()))
                await expect_error(
                    documents_pb2_grpc.DocumentServiceStub(channel).GetDocument(
                        missing, metadata=(*user.metadata, (HEADER, "nf-1")), timeout=10
                    ),
                    grpc.StatusCode.NOT_FOUND,
                )
        finally:
            await running.stop(None)
    return _access_records(handler), str(user.id)


async def test_one_access_record_per_call(database_url: str) -> None:
    records, user_id = await _calls(database_url, access_log=True)
    summary = [(r.method, r.code, r.user_id) for r in records]  # type: ignore[attr-defined]
    assert summary == [
        ("/docgate.v1.UserService/GetCurrentUser", "OK", user_id),
        ("/docgate.v1.UserService/GetCurrentUser", "UNAUTHENTICATED", "-"),
        ("/docgate.v1.DocumentService/GetDocument", "NOT_FOUND", user_id),
    ]
    ids = [r.request_id for r in records]  # type: ignore[attr-defined]
    assert len(set(ids)) == 3
    assert ids[2] == "nf-1"
    assert all(r.peer.startswith("ipv4:") for r in records)  # type: ignore[attr-defined]


async def test_access_log_false_writes_none(database_url: str) -> None:
    records, _ = await _calls(database_url, access_log=False)
    assert records == []


async def test_concurrent_calls_each_get_their_record_before_the_server_stops(
    database_url: str,
) -> None:
    """More calls at once than a batch holds (docgate.edge.access): each call's record is
    written while the server runs, once, with its own request id and outcome."""
    calls = 3 * BATCH + 5
    with _recording_access() as handler:
        app = build_app(settings_for(database_url, access_log=True), database_url)
        user = await make_user(app, "free_user")
        running = await start_server(app, "127.0.0.1:0")
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                users = users_pb2_grpc.UserServiceStub(channel)

                async def one(n: int) -> None:
                    metadata = (*user.metadata, (HEADER, f"batch-{n}"))
                    if n % 2:
                        metadata = ((HEADER, f"batch-{n}"),)  # no token: UNAUTHENTICATED
                        await expect_error(
                            users.GetCurrentUser(ME, metadata=metadata, timeout=10),
                            grpc.StatusCode.UNAUTHENTICATED,
                        )
                    else:
                        await users.GetCurrentUser(ME, metadata=metadata, timeout=10)

                await asyncio.gather(*(one(n) for n in range(calls)))
                for _ in range(100):  # written within DELAY_SECONDS, while serving
                    if len(_access_records(handler)) >= calls:
                        break
                    await asyncio.sleep(0.1)
                written = {r.request_id: r.code for r in _access_records(handler)}  # type: ignore[attr-defined]
                assert len(_access_records(handler)) == calls
        finally:
            await running.stop(None)
    expected = {f"batch-{n}": "UNAUTHENTICATED" if n % 2 else "OK" for n in range(calls)}
    assert written == expected
