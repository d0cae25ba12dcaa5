"""A real PgBouncer in transaction mode in front of a PostgreSQL reached by a URL; for
tests/e2e/test_pgbouncer.py and ``python -m bench --pgbouncer``.

Debian's package (``apt-get install -y pgbouncer``, as .ci/run does). Trust authentication,
one wildcard database entry pointing at the URL's server, listening on 127.0.0.1 only. As root
PgBouncer runs as the embedded server's user (it refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
INSTALL_HINT = "pgbouncer is not installed (Debian: apt-get install -y pgbouncer; .ci/run does)"


def installed() -> bool:
    return os.access(PGBOUNCER, os.X_OK)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configure(home: Path, database_url: str, port: int, server_connections: int) -> list[str]:
    """Write PgBouncer's configuration into ``home`` (created); returns the command to run.
    ``server_connections`` is its pool per database and user (default_pool_size)."""
    direct = make_url(database_url)
    socket_dir = direct.query.get("host") or "/tmp"
    home.mkdir(parents=True, exist_ok=True)
    (home / "users.txt").write_text(f'"{direct.username}" ""\n')
    (home / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={socket_dir} port={direct.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {home / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {server_connections}\n"
        "max_client_conn = 200\nlogfile =\npidfile =\n"
    )
    home.chmod(0o755)
    for path in home.iterdir():
        path.chmod(0o644)
    user = ["-u", "embedded_postgres"] if os.geteuid() == 0 else []
    return [PGBOUNCER, *user, str(home / "pgbouncer.ini")]


def url_through(database_url: str, port: int) -> str:
    """``database_url`` with the server replaced by PgBouncer on 127.0.0.1:``port``."""
    via = make_url(database_url).set(host="127.0.0.1", port=port, query={})
    return via.render_as_string(hide_password=False)


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def running(home: Path, database_url: str, server_connections: int) -> Iterator[str]:
    """PgBouncer in front of ``database_url``'s server until the block ends; yields the URL
    of the same database through it. Its log goes to ``home``/pgbouncer.log."""
    port = free_port()
    command = configure(home, database_url, port, server_connections)
    log_path = home / "pgbouncer.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        for _ in range(100):
            if listening(port) or proc.poll() is not None:
                break
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {log_path.read_text(errors='replace')}")
        yield url_through(database_url, port)
    finally:
        proc.terminate()
        proc.wait()
