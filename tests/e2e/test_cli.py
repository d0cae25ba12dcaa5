"""The `docgate` command as a user runs it: a real process against the test database."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from pathlib import Path

import grpc.aio
from docgate.v1 import users_pb2, users_pb2_grpc

from docgate.config import Settings
from docgate.tokens import TokenVerifier
from tests.support import TEST_SECRET, unique

DOCGATE = str(Path(sys.executable).with_name("docgate"))
TIMEOUT = 60


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGATE_")}
    env.update(DOCGATE_DATABASE_URL=database_url, DOCGATE_JWT_SECRET=TEST_SECRET, **extra)
    return env


async def serving_port(proc: asyncio.subprocess.Process) -> int:
    """Read `docgate serve`'s stderr until it says where it listens; return the port."""
    assert proc.stderr is not None
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), TIMEOUT)).decode()
        assert line, "server exited before serving"
        if match := re.search(r"serving on \S+:(\d+)", line):
            return int(match.group(1))


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_users_create_then_token(database_url: str) -> None:
    env = _env(database_url)
    name = unique()
    code, out, err = await _run(
        env, "users", "create", name, "--email", f"{name}@x.io", "--role", "paid_user"
    )
    assert code == 0, err
    user_id = uuid.UUID(out.strip())
    code, out, err = await _run(env, "token", name, "--ttl", "120")
    assert code == 0, err
    verifier = TokenVerifier(Settings(jwt_secret=TEST_SECRET))
    assert verifier.verify(out.strip()) == user_id
    code, out, _ = await _run(env, "token", str(user_id))
    assert verifier.verify(out.strip()) == user_id


async def test_users_create_errors_are_clear(database_url: str) -> None:
    env = _env(database_url)
    name = unique()
    assert (await _run(env, "users", "create", name, "--email", f"{name}@x.io"))[0] == 0
    code, _, err = await _run(env, "users", "create", name, "--email", f"other{name}@x.io")
    assert code == 1
    assert "already exists" in err
    code, _, err = await _run(env, "users", "create", unique(), "--email", "not-an-email")
    assert code == 2
    assert "email" in err
    code, _, err = await _run(env, "users", "create", unique(), "--email", "a@b.io", "--role", "x")
    assert code == 2
    code, _, err = await _run(env, "token", "nobody-" + unique())
    assert code == 1
    assert "not found" in err
    code, _, err = await _run(env, "token", "x", "--ttl", "0")
    assert code == 2
    assert "positive" in err


async def test_serve_refuses_without_a_key_when_database_is_external(database_url: str) -> None:
    env = _env(database_url)
    del env["DOCGATE_JWT_SECRET"]
    code, _, err = await _run(env, "serve")
    assert code == 2
    assert "DOCGATE_JWT_SECRET" in err


async def test_serve_answers_then_stops_cleanly_on_sigterm(database_url: str) -> None:
    env = _env(database_url, DOCGATE_LISTEN="127.0.0.1:0", DOCGATE_GRACE_SECONDS="2")
    name = unique()
    await _run(env, "users", "create", name, "--email", f"{name}@x.io", "--role", "admin")
    token = (await _run(env, "token", name))[1].strip()
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stderr is not None
        port = await serving_port(proc)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            me = await users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
                users_pb2.GetCurrentUserRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
        assert me.username == name
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.stderr.read(), TIMEOUT)).decode()
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
        assert "stopped" in rest
        assert "grace 2.0s" in rest  # DOCGATE_GRACE_SECONDS
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_migrate_current_downgrade_upgrade(scratch_database_url: str) -> None:
    env = _env(scratch_database_url)
    code, out, err = await _run(env, "migrate", "upgrade")
    assert code == 0, err
    head = out.strip()
    assert head
    assert (await _run(env, "migrate", "current"))[1].strip() == head
    code, out, err = await _run(env, "migrate", "downgrade", "base", "--yes")
    assert code == 0, err
    assert out.strip() == "base (no docgate schema)"
    assert "will drop tables" in err
    assert (await _run(env, "migrate", "upgrade"))[1].strip() == head
