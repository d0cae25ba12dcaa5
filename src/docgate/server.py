"""grpc.aio server lifecycle: services, health, reflection, graceful shutdown.

What is served comes from the registry (App.services): each binding is registered, reported by
health under its name, and listed by reflection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from sqlalchemy import text

from docgate.bootstrap import App
from docgate.edge.reflection import enable_reflection

log = logging.getLogger(__name__)

_HEALTH_TIMEOUT_SECONDS = 2.0


class ListenError(RuntimeError):
    """The listen address cannot be bound."""


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    app: App
    health: health_aio.HealthServicer
    _watch: asyncio.Task[None] | None = field(default=None, repr=False)

    async def stop(self, grace: float | None) -> None:
        """Refuse new calls, let in-flight ones finish within ``grace``, then release the
        database."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.app.close()


async def _database_reachable(app: App) -> bool:
    try:
        async with asyncio.timeout(_HEALTH_TIMEOUT_SECONDS), app.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not serving"; the reason goes to the log
        log.warning("health check failed: %s", type(exc).__name__)
        return False
    return True


async def _set_all(app: App, servicer: health_aio.HealthServicer, status: int) -> None:
    for name in ("", *(binding.name for binding in app.services)):
        await servicer.set(name, status)


async def _check_database(app: App, servicer: health_aio.HealthServicer) -> None:
    """SERVING while the database answers, NOT_SERVING while it does not."""
    reachable = await _database_reachable(app)
    await _set_all(
        app,
        servicer,
        health_pb2.HealthCheckResponse.SERVING
        if reachable
        else health_pb2.HealthCheckResponse.NOT_SERVING,
    )


async def _watch_database(app: App, servicer: health_aio.HealthServicer) -> None:
    while True:
        await asyncio.sleep(app.settings.health_interval_seconds)
        await _check_database(app, servicer)


async def start_server(app: App, listen: str) -> RunningServer:
    """Start serving ``app`` on ``listen`` (host:port; port 0 picks a free one)."""
    app.check_policy_covers_services()
    server = grpc.aio.server(
        interceptors=app.interceptors,
        maximum_concurrent_rpcs=app.settings.max_concurrent_rpcs,
        options=[("grpc.so_reuseport", 0)],
    )
    for binding in app.services:
        binding.add_to(server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, (*(binding.name for binding in app.services), health.SERVICE_NAME))
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError as exc:  # grpc's message only says "Failed to bind"
        raise ListenError(f"cannot listen on {listen}: address in use or not available") from exc
    await _check_database(app, health_servicer)
    await server.start()
    running = RunningServer(server, port, app, health_servicer)
    running._watch = asyncio.create_task(_watch_database(app, health_servicer))
    return running


async def serve_until_signalled(
    app: App, listen: str, on_started: Callable[[str], Awaitable[None]] | None = None
) -> None:
    """Serve until SIGTERM/SIGINT; ``on_started`` gets the bound host:port once serving."""
    # Handlers first: a SIGTERM that arrives as soon as we say "serving" must still be graceful.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = await start_server(app, listen)
    address = listen.rsplit(":", 1)[0] + f":{running.port}"
    if on_started is not None:
        await on_started(address)
    log.info("docgate serving on %s", address)
    await stop.wait()
    log.info("shutting down (grace %.1fs)", app.settings.grace_seconds)
    await running.stop(app.settings.grace_seconds)
    log.info("stopped")
