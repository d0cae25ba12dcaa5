"""What people debug with: the real grpcurl binary against the real server."""

from __future__ import annotations

import json

from docgate.bootstrap import App
from docgate.server import RunningServer
from tests.support import grpcurl, make_user


async def test_list_describe_and_call(app: App, server: RunningServer) -> None:
    target = f"127.0.0.1:{server.port}"
    code, out, err = await grpcurl(target, "list")
    assert code == 0, err
    assert set(out.split()) >= {
        "docgate.v1.DocumentService", "docgate.v1.RoleService", "docgate.v1.UserService",
        "grpc.health.v1.Health",
    }  # fmt: skip
    code, out, err = await grpcurl(target, "describe", "docgate.v1.Document")
    assert code == 0, err
    assert "requires_paid_access" in out
    alice = await make_user(app, "admin")
    code, out, err = await grpcurl(
        "-H", f"authorization: Bearer {alice.token}", target,
        "docgate.v1.UserService/GetCurrentUser",
    )  # fmt: skip
    assert code == 0, err
    reply = json.loads(out)
    assert (reply["username"], reply["roles"]) == (alice.username, ["admin"])
    code, out, err = await grpcurl(target, "docgate.v1.UserService/GetCurrentUser")
    assert code != 0
    assert "Unauthenticated" in err
