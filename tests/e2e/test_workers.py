"""`docgate serve --workers N`: N real processes on one port, a parent that supervises them.

Which process answered is read from ``x-docgate-worker`` (INDEX/PID, sent in the initial
metadata by every worker); the kernel hashes each new connection to one of the workers, so
a test opens fresh channels until it has seen the ones it needs.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc.aio
import pytest
from docgate.v1 import users_pb2, users_pb2_grpc

from docgate.cli.workers import RestartPolicy, Supervisor, WorkersFailed, worker_count
from tests.e2e.test_cli import DOCGATE, TIMEOUT, _env, _run
from tests.support import unique

REQUEST = users_pb2.GetCurrentUserRequest()


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    port: int
    log: list[str] = field(default_factory=list)

    def worker_pids(self) -> set[int]:
        """The parent's children right now (from /proc: what the kernel says, not docgate)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return {int(pid) for pid in children.read_text().split()}


async def _drain(stream: asyncio.StreamReader, lines: list[str]) -> None:
    async for raw in stream:
        lines.append(raw.decode(errors="replace"))


@asynccontextmanager
async def serving(env: dict[str, str], *args: str, workers: bool = True) -> AsyncIterator[Served]:
    """`docgate serve ARGS`, once the parent says every worker serves (``workers=False``: once
    the one process serves); killed if left running."""
    ready = (
        r"serving on \S+:(\d+) \(port \d+, \d+ workers\)" if workers else r"serving on \S+:(\d+) "
    )
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, "serve", *args, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    drain = asyncio.create_task(_drain(proc.stderr, lines))
    try:
        port = None
        for _ in range(TIMEOUT * 10):
            found = [re.search(ready, line) for line in lines]
            port = next((int(m.group(1)) for m in found if m), None)
            if port is not None or proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert port is not None, "".join(lines)
        yield Served(proc, port, lines)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
            for pid in _orphans(proc.pid, lines):
                os.kill(pid, signal.SIGKILL)
        await asyncio.wait_for(drain, TIMEOUT)


def _orphans(parent: int, lines: list[str]) -> list[int]:
    """Workers the logs named, still alive after their parent was killed (test clean-up)."""
    pids = {int(p) for line in lines for p in re.findall(r"pid (\d+)", line)}
    alive = []
    for pid in pids - {parent}:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


async def _worker_header(port: int, token: str) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
            REQUEST, metadata=(("authorization", f"Bearer {token}"),), timeout=10
        )
        await call
        return str(dict(await call.initial_metadata())["x-docgate-worker"])


async def _who_answers(port: int, token: str) -> tuple[int, str]:
    """One call on a fresh connection: the answering worker's (pid, username)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
            REQUEST, metadata=(("authorization", f"Bearer {token}"),), timeout=10
        )
        reply = await call
        worker = dict(await call.initial_metadata())["x-docgate-worker"]
    return int(str(worker).split("/")[1]), reply.username


async def _pids_seen(port: int, token: str, wanted: int, tries: int = 200) -> set[int]:
    seen: set[int] = set()
    for _ in range(tries):
        pid, _ = await _who_answers(port, token)
        seen.add(pid)
        if len(seen) >= wanted:
            break
    return seen


async def _admin_token(env: dict[str, str]) -> tuple[str, str]:
    name = unique()
    code, _, err = await _run(env, "users", "create", name, "--email", f"{name}@x.io")
    assert code == 0, err
    return name, (await _run(env, "token", name))[1].strip()


def _workers_env(database_url: str, **extra: str) -> dict[str, str]:
    return _env(database_url, DOCGATE_LISTEN="127.0.0.1:0", DOCGATE_GRACE_SECONDS="10", **extra)


async def test_two_workers_both_serve_and_a_killed_one_is_replaced(database_url: str) -> None:
    env = _workers_env(database_url, DOCGATE_WORKERS="2", DOCGATE_POOL_SIZE="3")
    name, token = await _admin_token(env)
    async with serving(env) as served:
        workers = served.worker_pids()
        assert len(workers) == 2
        assert "2 workers x (pool 3 + overflow 10) + 2 health = at most 28" in "".join(served.log)
        seen = await _pids_seen(served.port, token, wanted=2)
        assert seen == workers  # both processes answer, and only the parent's children do
        # x-docgate-worker is "DOCGATE_WORKER_INDEX/pid": the parent numbered them 0 and 1.
        indexes = {(await _worker_header(served.port, token)).split("/")[0] for _ in range(40)}
        assert indexes == {"0", "1"}

        victim, survivor = sorted(workers)
        os.kill(victim, signal.SIGKILL)
        for _ in range(TIMEOUT * 10):  # dead and reaped: its listening socket is closed
            if victim not in served.worker_pids():
                break
            await asyncio.sleep(0.05)
        for _ in range(20):  # the other worker keeps answering meanwhile, every call
            pid, username = await _who_answers(served.port, token)
            assert (pid, username) == (survivor, name)
        for _ in range(TIMEOUT * 10):
            replaced = served.worker_pids() - {survivor}
            if replaced and (await _pids_seen(served.port, token, wanted=2, tries=20)) == {
                survivor,
                *replaced,
            }:
                break
            await asyncio.sleep(0.1)
        assert len(replaced) == 1
        assert victim not in replaced
        log = "".join(served.log)
        assert f"(pid {victim}) exited (signal SIGKILL)" in log
        assert "restarting worker" in log

        served.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.proc.wait(), TIMEOUT) == 0


async def test_dev_mode_parent_owns_the_embedded_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGATE_")}
    env.update(DOCGATE_DATA_DIR=str(tmp_path / "dg"), DOCGATE_LISTEN="127.0.0.1:0")
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, "serve", "--workers", "2", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    lines: list[str] = []
    drain = asyncio.create_task(_drain(proc.stderr, lines))
    try:
        banner = ""
        while "CreateDocumentFromTemplate" not in banner:  # printed once, by the parent
            line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
            assert line, "".join(lines)
            banner += line
        token = re.findall(r"export ALICE_TOKEN=(\S+)", banner)[0]
        port = int(re.findall(r"grpcurl -plaintext 127.0.0.1:(\d+) list", banner)[0])
        pid, username = await _who_answers(port, token)
        assert username == "alice"
        assert pid != proc.pid
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.stdout.read(), TIMEOUT)).decode()
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
        assert "ALICE_TOKEN" not in rest  # one banner, not one per worker
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await asyncio.wait_for(drain, TIMEOUT)
    assert "".join(lines).count("docgate serving on") == 3  # two workers, then the parent


def _exiting(code: int) -> Supervisor:
    argv = [sys.executable, "-c", f"import sys; sys.exit({code})"]
    quick = RestartPolicy(first_delay=0.01, max_delay=0.05, give_up_after=3)
    return Supervisor(2, lambda index: (argv, dict(os.environ)), grace=1, policy=quick)


async def test_workers_that_keep_dying_make_the_parent_give_up() -> None:
    with pytest.raises(WorkersFailed, match=r"died 4 times in a row"):
        await _exiting(1).run()


async def test_a_worker_refusing_its_configuration_is_not_restarted() -> None:
    with pytest.raises(WorkersFailed, match=r"refused its configuration"):
        await _exiting(2).run()


async def test_a_port_taken_by_another_server_is_a_usage_error(database_url: str) -> None:
    # A listener without SO_REUSEPORT holds it: the parent's reservation fails before any
    # worker starts (the workers can only share the port with each other).
    env = _workers_env(database_url, DOCGATE_WORKERS="2")
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        env["DOCGATE_LISTEN"] = f"127.0.0.1:{port}"
        code, _, err = await _run(env, "serve")
    finally:
        blocker.close()
        await blocker.wait_closed()
    assert code == 2
    assert "address in use" in err


def test_workers_setting_and_flag() -> None:
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    assert worker_count(3) == 3


async def test_workers_flag_refuses_nonsense(database_url: str) -> None:
    code, _, err = await _run(_workers_env(database_url), "serve", "--workers", "0")
    assert code == 2
    assert "positive number or auto" in err
