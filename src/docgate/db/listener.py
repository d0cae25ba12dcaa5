"""One dedicated PostgreSQL connection that LISTENs on a channel and says when it can be trusted.

`Listener.run()` connects (its own asyncpg connection, outside the pool, application_name
``docgate-listener``), issues LISTEN, and only once PostgreSQL has answered it calls
``on_state(True)``. From then on every notification committed on the channel reaches
``on_notify(payload)``. The moment the connection is lost (the server closed it, e.g.
``pg_terminate_backend``; or a heartbeat got no answer within ``heartbeat_seconds``) it calls
``on_state(False)`` — synchronously, from the driver's termination callback where it can —
and reconnects after ``retry_seconds``. Notifications sent while it is down are lost, which is
why a listener's user must treat "down" as "know nothing" (docgate.repositories.principal_cache
bypasses its cache then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import make_url

from docgate.db.engine import async_url

log = logging.getLogger(__name__)

APPLICATION_NAME = "docgate-listener"


def driver_dsn(url: str) -> str:
    """``url`` (any form docgate accepts) as a DSN asyncpg itself takes."""
    parsed = make_url(async_url(url).render_as_string(hide_password=False))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    def __init__(
        self,
        url: str,
        channel: str,
        on_notify: Callable[[str], None],
        on_state: Callable[[bool], None],
        *,
        retry_seconds: float = 1.0,
        heartbeat_seconds: float = 1.0,
    ) -> None:
        self._dsn = driver_dsn(url)
        self._channel = channel
        self._on_notify = on_notify
        self._on_state = on_state
        self.retry_seconds = retry_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._up = False
        self._wake = asyncio.Event()
        # The listening connection's server process id while connected (pg_stat_activity.pid).
        self.backend_pid: int | None = None

    def _set(self, up: bool) -> None:
        if up != self._up:
            self._up = up
            self._on_state(up)

    def retry_now(self) -> None:
        """Skip the rest of the current wait before reconnecting (tests, operators)."""
        self._wake.set()

    async def run(self) -> None:
        """Listen until cancelled; never raises (except CancelledError)."""
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                self._set(False)
                raise
            except Exception as error:  # any failure: down, then retry
                log.warning("listener on %s lost: %s", self._channel, error.__class__.__name__)
            self._set(False)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.retry_seconds)

    async def _listen_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
            timeout=max(self.heartbeat_seconds, 5.0),
            server_settings={"application_name": APPLICATION_NAME},
        )
        self.backend_pid = conn.get_server_pid()
        lost = asyncio.Event()

        def terminated(_: object) -> None:
            self._set(False)  # before anything else runs on the loop
            lost.set()

        def notified(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            self._on_notify(payload)

        try:
            conn.add_termination_listener(terminated)
            await conn.add_listener(self._channel, notified)  # returns once LISTEN is done
            if conn.is_closed():
                return
            self._set(True)
            log.info("listening on %s", self._channel)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.heartbeat_seconds)
                if lost.is_set():
                    return
                try:
                    await conn.execute("SELECT 1", timeout=self.heartbeat_seconds)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                    self._set(False)
                    raise
        finally:
            self._set(False)
            self.backend_pid = None
            conn.terminate()
