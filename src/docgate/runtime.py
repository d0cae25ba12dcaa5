"""Where the database and the signing key come from, for every CLI command.

DOCGATE_DATABASE_URL set: that server; a key must be configured (no generated secrets in
production). Unset (dev mode): the embedded PostgreSQL in DOCGATE_DATA_DIR and, unless one is
configured, a secret generated once and kept in the data dir.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from docgate.config import Settings
from docgate.db import migrations
from docgate.db.embedded import ensure_database, start_embedded

SECRET_FILE = "jwt_secret"
# Dev mode serves metrics here unless DOCGATE_METRICS_LISTEN says otherwise.
DEV_METRICS_LISTEN = "127.0.0.1:9464"


class ConfigurationError(RuntimeError):
    """Settings that cannot work; the message says what to set."""


def dev_secret(data_dir: Path) -> str:
    """The dev-mode HS256 secret, generated on first use (0600 in the data dir)."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def with_keys(settings: Settings) -> Settings:
    """``settings`` with a usable key, or ConfigurationError."""
    has_key = (
        settings.jwt_secret if settings.jwt_algorithm == "HS256" else settings.jwt_public_key_file
    )
    if has_key:
        return settings
    if settings.embedded and settings.jwt_algorithm == "HS256":
        return settings.model_copy(update={"jwt_secret": dev_secret(settings.data_dir)})
    raise ConfigurationError(
        "DOCGATE_DATABASE_URL is set but no signing key is configured: set DOCGATE_JWT_SECRET "
        "(HS256) or DOCGATE_JWT_PUBLIC_KEY_FILE (RS256/ES256)"
    )


async def database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started or joined here)."""
    if settings.database_url:
        return settings.database_url
    return await ensure_database(start_embedded(settings.data_dir))


async def migrated_database_url(settings: Settings) -> str:
    url = await database_url(settings)
    await migrations.upgrade(url)
    return url


def worker_metrics(settings: Settings) -> Settings:
    """In worker INDEX of `serve --workers N`: metrics on the configured port + INDEX (one port
    per worker, docs/scaling.md); port 0 (any free one) and unset stay as they are."""
    if settings.metrics_listen is None or settings.worker_index is None:
        return settings
    host, _, port = settings.metrics_listen.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return settings
    listen = f"{host}:{int(port) + settings.worker_index}"
    return settings.model_copy(update={"metrics_listen": listen})


def with_dev_metrics(settings: Settings) -> Settings:
    """Dev mode with DOCGATE_METRICS_LISTEN unset: metrics on 127.0.0.1:9464, or on a free port
    (logged at start) when another process holds that one — a second dev server on the same
    machine must still start. An address the operator set is never replaced."""
    if not settings.embedded or settings.metrics_listen is not None:
        return settings
    host, _, port = DEV_METRICS_LISTEN.rpartition(":")
    listen = DEV_METRICS_LISTEN
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server does
        try:
            probe.bind((host, int(port)))
        except OSError:
            listen = f"{host}:0"
    return settings.model_copy(update={"metrics_listen": listen})
