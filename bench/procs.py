"""Server subprocesses: start, wait until healthy, stop (always, even on errors)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def docgate_executable() -> str:
    local = Path(sys.executable).with_name("docgate")
    return str(local) if local.exists() else "docgate"


def serving(target: str, timeout_s: float = 1.0) -> bool:
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def stop(process: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace_s``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(grace_s)


@contextlib.contextmanager
def server(
    name: str, argv: list[str], env: Mapping[str, str], port: int, log_dir: Path
) -> Iterator[str]:
    """Run ``argv`` as a server on ``port``; yields its target once health says SERVING."""
    target = f"{HOST}:{port}"
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_serving(name, process, target, log_path)
        yield target
    finally:
        stop(process)


def serve_docgate(stack: ExitStack, name: str, env: Mapping[str, str], log_dir: Path) -> str:
    """`docgate serve` on a free port with ``env``, stopped when ``stack`` closes; its target.
    Its log is ``log_dir``/``name``.log (``name`` with anything but ``[A-Za-z0-9._-]`` as ``-``)."""
    port = free_port()
    argv = [docgate_executable(), "serve"]
    env = {**env, "DOCGATE_LISTEN": f"{HOST}:{port}"}
    log_name = re.sub(r"[^A-Za-z0-9._-]", "-", name)
    return stack.enter_context(server(log_name, argv, env, port, log_dir))


def _wait_serving(
    name: str, process: subprocess.Popen[bytes], target: str, log_path: Path, timeout_s: float = 60
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        if serving(target):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} not serving on {target} after {timeout_s:.0f}s (log: {log_path})")
