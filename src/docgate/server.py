"""grpc.aio server lifecycle: services, health, reflection, graceful shutdown.

What is served comes from the registry (App.services): each binding is registered, reported by
health under its name, and listed by reflection. Health is SERVING while the database answers
and its schema is at the revision this build expects (docgate.db.schema).
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

from docgate.bootstrap import App
from docgate.db import migrations
from docgate.db.schema import schema_problem
from docgate.edge.health import HealthServicer
from docgate.edge.metrics import MetricsEndpoint, serve_metrics
from docgate.edge.reflection import enable_reflection
from docgate.edge.transport import (
    TlsConfigurationError,
    add_port,
    server_credentials,
    server_options,
)

log = logging.getLogger(__name__)

_HEALTH_TIMEOUT_SECONDS = 2.0


class ListenError(RuntimeError):
    """The listen address cannot be bound."""


# Hosts that mean "every interface" (what the operator asked for, not a default here).
_WILDCARDS = ("", "0.0.0.0", "[::]", "*")  # noqa: S104


def bindable(listen: str) -> str:
    """``listen`` as grpc binds it: ``:PORT`` (no host) means every interface, ``[::]:PORT``
    (grpc refuses an empty host)."""
    host, sep, port = listen.rpartition(":")
    if not sep:
        raise ListenError(f"cannot listen on {listen}: expected HOST:PORT, [::]:PORT or :PORT")
    return f"[::]:{port}" if host in ("", "*") else listen


def dialable(listen: str, port: int) -> str:
    """Where a client on this machine reaches a server bound to ``listen`` on ``port``."""
    host = listen.rpartition(":")[0]
    return f"127.0.0.1:{port}" if host in _WILDCARDS else f"{host}:{port}"


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    app: App
    health: HealthServicer
    _watch: asyncio.Task[None] | None = field(default=None, repr=False)
    metrics: MetricsEndpoint | None = None
    _replica_watch: asyncio.Task[None] | None = field(default=None, repr=False)

    async def stop(self, grace: float | None) -> None:
        """Refuse new calls, let in-flight ones finish within ``grace``, then release the
        database."""
        for watch in (self._watch, self._replica_watch):
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.metrics is not None:
            self.metrics.close()
        await self.app.close()


@dataclass
class _Health:
    """Health from the database's state; logs each change of it, not every check."""

    app: App
    servicer: HealthServicer
    heads: frozenset[str]
    problem: str | None = None

    async def check(self) -> None:
        problem = await schema_problem(self.app.health_engine, self.heads, _HEALTH_TIMEOUT_SECONDS)
        if problem != self.problem:
            if problem is None:
                log.info("health: SERVING (database schema at %s)", ", ".join(sorted(self.heads)))
            else:
                log.warning("health: NOT_SERVING: %s", problem)
        self.problem = problem
        status = health_pb2.HealthCheckResponse.SERVING
        if problem is not None:
            status = health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *(binding.name for binding in self.app.services)):
            await self.servicer.set(name, status)


async def _watch_database(health: _Health) -> None:
    while True:
        await asyncio.sleep(health.app.settings.health_interval_seconds)
        await health.check()


async def start_server(app: App, listen: str) -> RunningServer:
    """Start serving ``app`` on ``listen`` (host:port; port 0 picks a free one)."""
    app.check_policy_covers_services()
    server = grpc.aio.server(
        interceptors=app.interceptors,
        maximum_concurrent_rpcs=app.settings.max_concurrent_rpcs,
        # Off, so a second server on a taken port fails loudly; on in the workers of
        # `serve --workers N`, which share one port (docgate.cli.workers).
        options=[
            ("grpc.so_reuseport", int(app.settings.worker_index is not None)),
            *server_options(app.settings),
        ],
    )
    for binding in app.services:
        binding.add_to(server)
    health_servicer = HealthServicer(app.metrics)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, (*(binding.name for binding in app.services), health.SERVICE_NAME))
    try:
        port = add_port(server, bindable(listen), server_credentials(app.settings))
    except TlsConfigurationError as exc:
        raise ListenError(f"cannot serve TLS: {exc}") from exc
    except RuntimeError as exc:  # grpc's message only says "Failed to bind"
        raise ListenError(f"cannot listen on {listen}: address in use or not available") from exc
    endpoint = _serve_metrics(app)
    health_state = _Health(app, health_servicer, migrations.heads())
    await health_state.check()
    await app.replicas.refresh()
    if app.sealer is not None:  # seals what an earlier process left pending, then on every poke
        app.sealer.start()
    await server.start()
    running = RunningServer(server, port, app, health_servicer, metrics=endpoint)
    running._watch = asyncio.create_task(_watch_database(health_state))
    if app.replicas.configured:  # health stays the primary's: a replica down is only skipped
        interval = app.settings.health_interval_seconds
        running._replica_watch = asyncio.create_task(app.replicas.watch(interval))
    return running


def _serve_metrics(app: App) -> MetricsEndpoint | None:
    listen = app.settings.metrics_listen
    if app.metrics is None or not listen:
        return None
    try:
        endpoint = serve_metrics(app.metrics, listen)
    except OSError as exc:
        raise ListenError(f"cannot serve metrics on {listen}: {exc.strerror or exc}") from exc
    log.info("metrics on http://%s/metrics", dialable(listen, endpoint.port))
    return endpoint


async def serve_until_signalled(
    app: App, listen: str, on_started: Callable[[str], Awaitable[None]] | None = None
) -> None:
    """Serve until SIGTERM/SIGINT; ``on_started`` gets the host:port to dial once serving."""
    # Handlers first: a SIGTERM that arrives as soon as we say "serving" must still be graceful.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = await start_server(app, listen)
    bound = bindable(listen).rpartition(":")[0] + f":{running.port}"
    address = dialable(listen, running.port)
    if on_started is not None:
        await on_started(address)
    log.info("docgate serving on %s (port %d)", bound, running.port)
    await stop.wait()
    log.info("shutting down (grace %.1fs)", app.settings.grace_seconds)
    await running.stop(app.settings.grace_seconds)
    log.info("stopped")
