"""`docgate serve --workers N`: a parent that supervises N serving processes on one port.

The pattern of grpc's Python multiprocessing example: every worker is a whole docgate server
(its own event loop, pool and health) that binds the same port with ``grpc.so_reuseport``,
and the kernel spreads incoming connections over them. The parent never serves an RPC; it
runs the migrations once (docgate.cli.serve), reserves the port, starts the workers, forwards
SIGTERM/SIGINT to them (each drains as a single server does), and replaces a worker that
dies, with a backoff; when one keeps dying it gives up, stops the others and exits non-zero.

A worker is ``python -m docgate.cli serve`` with ``DOCGATE_WORKER_INDEX`` set, run by exec
(not fork: gRPC must not be forked once running, grpc issue #16001). It reads the same
DOCGATE_* settings, with the database URL and the signing key the parent resolved (in dev
mode, the parent's embedded PostgreSQL and generated secret), writes the single line
``ready`` on its stdout once it serves, and stops gracefully when its parent is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field

from docgate.config import ENV_PREFIX, Settings
from docgate.server import ListenError, bindable

log = logging.getLogger(__name__)

READY = "ready"
# A worker that exits with this code refused its configuration: restarting cannot help.
CONFIGURATION_EXIT = 2


class WorkersFailed(RuntimeError):
    """Workers kept dying (or refused their configuration); the message says which."""


def worker_count(workers: int | str) -> int:
    """``DOCGATE_WORKERS`` as a number: ``auto`` is the CPUs this process may run on."""
    if workers != "auto":
        return int(workers)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def connection_budget(settings: Settings, count: int) -> str:
    """The line logged at start: what N workers may open against the database at most."""
    per_worker = settings.pool_size + settings.max_overflow
    return (
        f"{count} workers x (pool {settings.pool_size} + overflow {settings.max_overflow}) "
        f"+ {count} health = at most {count * (per_worker + 1)} database connections"
    )


@contextlib.contextmanager
def reserved_port(listen: str) -> Iterator[str]:
    """Hold ``listen``'s port (picking one for port 0) for as long as the workers run; yields
    the listen address the workers bind. The socket is bound, never listening, so it takes
    no connection: only the workers' listening sockets join the kernel's reuse-port group."""
    host, _, port = bindable(listen).rpartition(":")
    name = host.strip("[]")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            name, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, ValueError) as exc:
        raise ListenError(f"cannot listen on {listen}: {exc}") from exc
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise ListenError(
                f"cannot listen on {listen}: address in use or not available"
            ) from exc
        yield f"{host}:{sock.getsockname()[1]}"


def worker_environment(settings: Settings, database_url: str, listen: str) -> dict[str, str]:
    """What every worker gets: this environment, pinned to what the parent resolved."""
    env = dict(os.environ)
    env.update({
        f"{ENV_PREFIX}DATABASE_URL": database_url,
        f"{ENV_PREFIX}LISTEN": listen,
        f"{ENV_PREFIX}WORKERS": "1",
    })  # fmt: skip
    if settings.jwt_secret:
        env[f"{ENV_PREFIX}JWT_SECRET"] = settings.jwt_secret
    return env


def worker_command(env: Mapping[str, str]) -> Callable[[int], tuple[list[str], dict[str, str]]]:
    def command(index: int) -> tuple[list[str], dict[str, str]]:
        own = {**env, f"{ENV_PREFIX}WORKER_INDEX": str(index)}
        return [sys.executable, "-m", "docgate.cli", "serve"], own

    return command


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.5  # seconds before the first restart of a slot; doubles after
    max_delay: float = 10.0
    stable_seconds: float = 30.0  # a worker that lived this long starts its slot afresh
    give_up_after: int = 5  # early deaths in a row of one slot


@dataclass
class Supervisor:
    count: int
    command: Callable[[int], tuple[list[str], dict[str, str]]]
    grace: float
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    _procs: dict[int, asyncio.subprocess.Process] = field(default_factory=dict, init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _signal: int = field(default=signal.SIGTERM, init=False)

    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs.values() if proc.returncode is None]

    async def run(self, on_started: Callable[[], Awaitable[None]] | None = None) -> None:
        """Until stopped by a signal (all workers drained: returns) or until workers keep
        dying (WorkersFailed, after stopping the rest)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop, sig)
        ready = [asyncio.Event() for _ in range(self.count)]
        slots = [asyncio.create_task(self._slot(i, ready[i])) for i in range(self.count)]
        started = asyncio.create_task(self._all_ready(ready, on_started))
        try:
            await self._until_done(slots)
        finally:
            started.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _all_ready(
        self, ready: list[asyncio.Event], on_started: Callable[[], Awaitable[None]] | None
    ) -> None:
        await asyncio.gather(*(event.wait() for event in ready))
        log.info("all %d workers serving (pids %s)", self.count, " ".join(map(str, self.pids())))
        if on_started is not None:
            await on_started()

    async def _until_done(self, slots: list[asyncio.Task[None]]) -> None:
        done, pending = await asyncio.wait(slots, return_when=asyncio.FIRST_EXCEPTION)
        failure = next((t.exception() for t in done if t.exception() is not None), None)
        if failure is not None:
            self._stop(signal.SIGTERM)
        # A worker gets its own grace to drain, and a margin to start and exit around it.
        _, stuck = await asyncio.wait(pending, timeout=self.grace + 15) if pending else ((), ())
        for index, proc in self._procs.items():
            if proc.returncode is None:
                log.error("worker %d (pid %d) did not stop in time: killed", index, proc.pid)
                proc.kill()
        for task in stuck:
            task.cancel()
        if failure is not None:
            raise failure
        if stuck:
            raise WorkersFailed("workers did not stop within the grace period")
        unclean = [t.exception() for t in done if t.exception() is not None]
        if unclean:
            raise unclean[0]  # type: ignore[misc]

    def _stop(self, sig: int) -> None:
        if not self._stopping.is_set():
            log.info("%s: stopping %d workers", signal.Signals(sig).name, self.count)
        self._signal = sig
        self._stopping.set()
        for proc in self._procs.values():
            if proc.returncode is None:
                proc.send_signal(sig)

    async def _slot(self, index: int, ready: asyncio.Event) -> None:
        """Keep worker ``index`` running until the supervisor stops."""
        loop = asyncio.get_running_loop()
        early_deaths = 0
        while True:
            argv, env = self.command(index)
            proc = await asyncio.create_subprocess_exec(
                *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE
            )
            self._procs[index] = proc
            if self._stopping.is_set():  # a signal arrived while it was being started
                proc.send_signal(self._signal)
            born = loop.time()
            served = await _follow(proc, ready)
            code = await proc.wait()
            if self._stopping.is_set():
                self._check_clean_stop(index, proc.pid, code)
                return
            log.warning("worker %d (pid %d) exited (%s)", index, proc.pid, _describe(code))
            if code == CONFIGURATION_EXIT and not served:
                raise WorkersFailed(f"worker {index} refused its configuration (exit 2)")
            early_deaths = (
                1 if loop.time() - born >= self.policy.stable_seconds else early_deaths + 1
            )
            if early_deaths > self.policy.give_up_after:
                raise WorkersFailed(
                    f"worker {index} died {early_deaths} times in a row, each within "
                    f"{self.policy.stable_seconds:g}s of its start: giving up"
                )
            delay = min(self.policy.first_delay * 2 ** (early_deaths - 1), self.policy.max_delay)
            log.info("restarting worker %d in %.1fs", index, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return

    def _check_clean_stop(self, index: int, pid: int, code: int) -> None:
        # Killed by the very signal forwarded: it had not installed its handlers, so it was
        # not serving yet and had nothing to drain.
        if code not in (0, -self._signal):
            raise WorkersFailed(f"worker {index} (pid {pid}) stopped badly ({_describe(code)})")


async def _follow(proc: asyncio.subprocess.Process, ready: asyncio.Event) -> bool:
    """Read the worker's stdout until it closes; True once the worker said it serves."""
    assert proc.stdout is not None
    served = False
    async for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        if line == READY and not served:
            served = True
            ready.set()
        else:
            print(line, flush=True)
    return served


def _describe(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
