"""`make run`'s path: no DOCGATE_DATABASE_URL → embedded PostgreSQL in the data dir, a secret
generated once, demo users seeded on first start, data kept across restarts."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import grpc.aio
from docgate.v1 import users_pb2, users_pb2_grpc

from tests.e2e.test_cli import DOCGATE, TIMEOUT, serving_port


def _dev_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGATE_")}
    env.update(DOCGATE_DATA_DIR=str(data_dir), DOCGATE_LISTEN="127.0.0.1:0")
    return env


async def _serve_once(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Start `docgate serve`, read its banner, ask GetCurrentUser as alice, stop it."""
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, "serve", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        port = await serving_port(proc)
        proc.send_signal(signal.SIGTERM)
        banner = (await asyncio.wait_for(proc.stdout.read(), TIMEOUT)).decode()
        shutdown = (await asyncio.wait_for(proc.stderr.read(), TIMEOUT)).decode()
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
        # A clean stop says so and nothing else: no warnings (gRPC's fork_posix.cc line
        # came from pg_ctl's fork at exit; docgate/__init__.py turns those handlers off).
        assert "stopped" in shutdown
        noise = [line for line in shutdown.splitlines() if " INFO " not in line]
        assert not noise, noise
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    tokens = dict(re.findall(r"export (\w+)_TOKEN=(\S+)", banner))
    assert f"grpcurl -plaintext 127.0.0.1:{port} list" in banner
    return banner, tokens


async def test_first_start_seeds_and_data_survives_restart(tmp_path: Path) -> None:
    env = _dev_env(tmp_path / "dg")
    banner, tokens = await _serve_once(env)
    assert "demo data seeded" in banner
    assert set(tokens) == {"ALICE", "BOB", "CAROL"}
    assert "grpcurl -plaintext" in banner
    secret = (tmp_path / "dg" / "jwt_secret").read_text()
    assert len(secret) >= 32
    assert (tmp_path / "dg" / "jwt_secret").stat().st_mode & 0o777 == 0o600

    banner, _ = await _serve_once(env)
    assert "demo data seeded" not in banner
    assert (tmp_path / "dg" / "jwt_secret").read_text() == secret

    # A token printed by the first run still works against a third start of the same data dir.
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, "serve", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    try:
        port = await serving_port(proc)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            me = await users_pb2_grpc.UserServiceStub(channel).GetCurrentUser(
                users_pb2.GetCurrentUserRequest(),
                metadata=(("authorization", f"Bearer {tokens['ALICE']}"),),
                timeout=10,
            )
        assert (me.username, list(me.roles)) == ("alice", ["admin"])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
