"""Real PostgreSQL (embedded by default, or DOCGATE_TEST_DATABASE_URL), real migrations, a real
grpc.aio server on port 0 and a real channel. Tests isolate by unique data, never by order."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc.aio
import pytest
from sqlalchemy.engine import make_url

from docgate.bootstrap import App, build_app
from docgate.config import Settings
from docgate.db import migrations
from docgate.db.embedded import ensure_database, start_embedded
from docgate.server import RunningServer, start_server
from tests.support import TEST_SECRET


def pytest_configure(config: pytest.Config) -> None:
    """Give this run a temp root of its own.

    The embedded PostgreSQL runs as another user, so its wheel opens the folders above its data
    dir to others (chmod o+rx), /tmp/pytest-of-root included; and every pytest that starts on
    the machine sets /tmp/pytest-of-root back to 0700. A second test run (another worktree's,
    or a developer's one-off) thus cut every running embedded server off from its data, which
    crashed mid-suite. Registered before any server starts, the removal runs after their
    atexit cleanups (atexit is last-in, first-out).
    """
    if "PYTEST_DEBUG_TEMPROOT" not in os.environ:
        root = tempfile.mkdtemp(prefix="docgate-tests-")
        os.environ["PYTEST_DEBUG_TEMPROOT"] = root
        atexit.register(shutil.rmtree, root, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PostgreSQL server URL (superuser) that tests may create databases on."""
    external = os.environ.get("DOCGATE_TEST_DATABASE_URL")
    if external:
        return external
    # Short path: the unix socket lives in the data dir and socket paths are limited.
    return start_embedded(Path(tmp_path_factory.mktemp("pg")), delete_on_exit=True)


async def _fresh_database(server_url: str, prefix: str) -> str:
    return await ensure_database(server_url, f"{prefix}_{uuid.uuid4().hex[:10]}")


async def _drop_database(url: str) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        parsed.set(database="postgres").render_as_string(hide_password=False)
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A database migrated to head, shared by the session."""
    url = await _fresh_database(server_url, "docgate_test")
    await migrations.upgrade(url)
    yield url
    await _drop_database(url)


@pytest.fixture(scope="module")
async def module_database_url(server_url: str) -> AsyncIterator[str]:
    """A database migrated to head, of the module's own: for a world that must be alone in
    its database (listings without a filter that scopes them to the test's rows)."""
    url = await _fresh_database(server_url, "docgate_module")
    await migrations.upgrade(url)
    yield url
    await _drop_database(url)


@pytest.fixture
async def scratch_database_url(server_url: str) -> AsyncIterator[str]:
    """An empty database of the test's own."""
    url = await _fresh_database(server_url, "docgate_scratch")
    yield url
    await _drop_database(url)


def settings_for(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "jwt_secret": TEST_SECRET,
        "pool_size": 10,
        "max_overflow": 20,
        # The suite shares a 2-core box with PostgreSQL; a burst of 200 calls may queue for a
        # connection longer than the production default allows.
        "pool_timeout": 30.0,
        "health_interval_seconds": 0.2,
        "grace_seconds": 1.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[App]:
    application = build_app(settings_for(database_url), database_url)
    yield application
    await application.close()


@pytest.fixture(scope="session")
async def server(app: App) -> AsyncIterator[RunningServer]:
    running = await start_server(app, "127.0.0.1:0")
    yield running
    await running.stop(None)


@pytest.fixture(scope="session")
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch
