"""TLS and mTLS through a real server, with certificates made here: grpc clients and the real
grpcurl with -cacert, with and without a client certificate; expired or foreign client
certificates are refused; a rotated certificate is picked up without dropping connections."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import grpc.aio
import pydantic
import pytest
from docgate.v1 import users_pb2, users_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from docgate.bootstrap import App, build_app
from docgate.config import Settings
from docgate.server import ListenError, RunningServer, start_server
from tests.conftest import settings_for
from tests.e2e.test_cli import DOCGATE, _env, _run, serving_port
from tests.pki import Authority, Issued
from tests.support import GRPCURL, TEST_SECRET, make_user

ME = users_pb2.GetCurrentUserRequest()
# Each channel its own connection: grpc would otherwise share one between equal channels.
OWN = (("grpc.use_local_subchannel_pool", 1),)


@asynccontextmanager
async def _tls_server(database_url: str, **tls: object) -> AsyncIterator[tuple[App, RunningServer]]:
    app = build_app(settings_for(database_url, **tls), database_url)
    running = await start_server(app, "127.0.0.1:0")
    try:
        yield app, running
    finally:
        await running.stop(None)


def _credentials(ca: Authority, client: Issued | None = None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=ca.pem)
    return grpc.ssl_channel_credentials(ca.pem, client.key, client.cert)


async def _whoami(target: str, credentials: grpc.ChannelCredentials, token: str) -> str:
    async with grpc.aio.secure_channel(target, credentials, OWN) as channel:
        stub = users_pb2_grpc.UserServiceStub(channel)
        reply = await stub.GetCurrentUser(
            ME, metadata=(("authorization", f"Bearer {token}"),), timeout=10
        )
        return reply.username


async def _refused(target: str, credentials: grpc.ChannelCredentials) -> grpc.aio.AioRpcError:
    """A call that cannot get past the handshake: UNAVAILABLE, nothing reached a handler."""
    async with grpc.aio.secure_channel(target, credentials, OWN) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
    return caught.value


async def _grpcurl_tls(*args: str) -> tuple[int, str, str]:
    """The real grpcurl over TLS (no -plaintext): exit code, stdout, stderr."""
    assert GRPCURL is not None, "grpcurl missing: reinstall the dev dependencies"
    proc = await asyncio.create_subprocess_exec(
        GRPCURL, "-max-time", "10", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


async def test_tls_serves_grpc_and_grpcurl_and_refuses_plaintext(
    database_url: str, ca: Authority
) -> None:
    leaf = ca.issue("server", server=True)
    tls = {"tls_cert_file": leaf.cert_file, "tls_key_file": leaf.key_file}
    async with _tls_server(database_url, **tls) as (app, running):
        target = f"127.0.0.1:{running.port}"
        user = await make_user(app, "free_user")
        assert await _whoami(target, _credentials(ca), user.token) == user.username
        assert await _whoami(f"localhost:{running.port}", _credentials(ca), user.token)
        # A client that trusts another CA, and one that speaks plaintext, get nothing.
        await _refused(target, _credentials(Authority(ca.folder.parent / "other")))
        async with grpc.aio.insecure_channel(target) as plain:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health_pb2_grpc.HealthStub(plain).Check(
                    health_pb2.HealthCheckRequest(), timeout=10
                )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

        code, out, err = await _grpcurl_tls("-cacert", str(ca.cert_file), target, "list")
        assert code == 0, err
        assert "docgate.v1.UserService" in out.split()
        auth = f"authorization: Bearer {user.token}"
        code, out, err = await _grpcurl_tls(
            "-cacert", str(ca.cert_file), "-H", auth, target,
            "docgate.v1.UserService/GetCurrentUser",
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["username"] == user.username
        code, _, err = await _grpcurl_tls("-plaintext", target, "list")
        assert code != 0
        code, _, err = await _grpcurl_tls(target, "list")  # the system's roots: not our CA
        assert code != 0
        assert "certificate" in err


async def test_mtls_requires_a_client_certificate_from_the_ca(
    database_url: str, ca: Authority
) -> None:
    leaf = ca.issue("server", server=True)
    client = ca.issue("client")
    expired = ca.issue("expired", expired=True)
    foreign = Authority(ca.folder.parent / "foreign").issue("foreign")
    tls = {
        "tls_cert_file": leaf.cert_file,
        "tls_key_file": leaf.key_file,
        "tls_client_ca_file": ca.cert_file,
    }
    async with _tls_server(database_url, **tls) as (app, running):
        target = f"127.0.0.1:{running.port}"
        user = await make_user(app, "free_user")
        assert await _whoami(target, _credentials(ca, client), user.token) == user.username
        await _refused(target, _credentials(ca))
        await _refused(target, _credentials(ca, expired))
        await _refused(target, _credentials(ca, foreign))

        cacert = ("-cacert", str(ca.cert_file))
        with_cert = (*cacert, "-cert", str(client.cert_file), "-key", str(client.key_file))
        code, out, err = await _grpcurl_tls(*with_cert, target, "list")
        assert code == 0, err
        assert "docgate.v1.UserService" in out.split()
        code, out, err = await _grpcurl_tls(*with_cert, target, "grpc.health.v1.Health/Check")
        assert code == 0, err
        assert json.loads(out)["status"] == "SERVING"
        code, _, err = await _grpcurl_tls(*cacert, target, "list")
        assert code != 0
        for bad in (expired, foreign):
            code, _, err = await _grpcurl_tls(
                *cacert, "-cert", str(bad.cert_file), "-key", str(bad.key_file), target, "list"
            )
            assert code != 0, bad


def _replace(target: Path, data: bytes) -> None:
    """Write ``data`` next to ``target`` and rename it over: how secrets are rotated."""
    fresh = target.with_suffix(".new")
    fresh.write_bytes(data)
    os.replace(fresh, target)


async def test_a_rotated_certificate_is_served_to_new_connections_without_dropping_old_ones(
    database_url: str, ca: Authority, tmp_path: Path
) -> None:
    served = ca.issue("server", server=True)
    successor_ca = Authority(tmp_path / "successor")
    successor = successor_ca.issue("server", server=True)
    tls = {"tls_cert_file": served.cert_file, "tls_key_file": served.key_file}
    async with _tls_server(database_url, **tls) as (app, running):
        target = f"127.0.0.1:{running.port}"
        user = await make_user(app, "free_user")
        metadata = (("authorization", f"Bearer {user.token}"),)
        async with grpc.aio.secure_channel(target, _credentials(ca), OWN) as kept:
            stub = users_pb2_grpc.UserServiceStub(kept)
            await stub.GetCurrentUser(ME, metadata=metadata, timeout=10)

            # Half a rotation (the new certificate, the old key) is not loaded: the old pair
            # still serves new connections.
            _replace(served.cert_file, successor.cert)
            assert await _whoami(target, _credentials(ca), user.token) == user.username
            await _refused(target, _credentials(successor_ca))

            _replace(served.key_file, successor.key)
            assert await _whoami(target, _credentials(successor_ca), user.token)
            await _refused(target, _credentials(ca))
            # The connection opened before the rotation still works, on the old certificate.
            assert kept.get_state() == grpc.ChannelConnectivity.READY
            reply = await stub.GetCurrentUser(ME, metadata=metadata, timeout=10)
            assert reply.username == user.username
            assert kept.get_state() == grpc.ChannelConnectivity.READY


async def test_tls_settings_go_together(database_url: str, ca: Authority) -> None:
    leaf = ca.issue("server", server=True)
    with pytest.raises(pydantic.ValidationError, match="go together"):
        Settings(jwt_secret=TEST_SECRET, tls_cert_file=leaf.cert_file)
    with pytest.raises(pydantic.ValidationError, match="needs DOCGATE_TLS_CERT_FILE"):
        Settings(jwt_secret=TEST_SECRET, tls_client_ca_file=ca.cert_file)
    # A key that is not the certificate's, or a missing file: the server does not start.
    other = ca.issue("other", server=True)
    for key in (other.key_file, leaf.key_file.with_name("missing.pem")):
        app = build_app(
            settings_for(database_url, tls_cert_file=leaf.cert_file, tls_key_file=key),
            database_url,
        )
        try:
            with pytest.raises(ListenError, match="cannot serve TLS"):
                await start_server(app, "127.0.0.1:0")
        finally:
            await app.close()


async def test_docgate_serve_with_mtls_from_the_environment(
    database_url: str, ca: Authority
) -> None:
    """The command as operators run it: settings from DOCGATE_TLS_*, health over mTLS,
    a clean stop; a half TLS configuration is a usage error (exit 2)."""
    leaf, client = ca.issue("server", server=True), ca.issue("client")
    env = _env(
        database_url,
        DOCGATE_LISTEN="127.0.0.1:0",
        DOCGATE_TLS_CERT_FILE=str(leaf.cert_file),
        DOCGATE_TLS_KEY_FILE=str(leaf.key_file),
        DOCGATE_TLS_CLIENT_CA_FILE=str(ca.cert_file),
    )
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stderr is not None
        port = await serving_port(proc)
        async with grpc.aio.secure_channel(
            f"localhost:{port}", _credentials(ca, client), OWN
        ) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await _refused(f"127.0.0.1:{port}", _credentials(ca))
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    del env["DOCGATE_TLS_KEY_FILE"]
    code, _, err = await _run(env, "serve")
    assert code == 2
    assert err.strip() == ("docgate: DOCGATE_TLS_CERT_FILE and DOCGATE_TLS_KEY_FILE go together")
