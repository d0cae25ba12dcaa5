"""The C load generator: ``h2load`` (nghttp2) against both servers, with pre-serialised gRPC
frames, so the measured ratio is the servers' own CPU per call and not the Python client's.

``H2loadRunner`` has the Python runner's ``compare`` (bench.runner.Runner), so a bench run swaps
one for the other (``python -m bench --h2load``). Per round and target it runs, one after the
other, one ``h2load -c CLIENTS -m STREAMS`` per distinct caller of the scenario (the body is one
fixed gRPC frame per h2load process: that caller's first request), each for
``duration / callers`` seconds after its own warm-up, and adds them up: req/s is all answers
over all measured seconds, p50/p99 come from h2load's per-request log.

h2load sees HTTP/2, not gRPC: a gRPC error is an HTTP 200 with ``grpc-status`` in the trailers
and no DATA. So before measuring, each call is sent once through grpc (its answer must be OK),
and a round's answers are counted as OK only up to the DATA bytes h2load received divided by
the size of that OK answer's frame; the rest are reported as errors (``NO_DATA``).

On a shared box req/s moves with everyone else's load; the server's own CPU per answered call
moves much less. So each round also reads the target process's CPU time (user + system, found
by its listening port) before and after, and `compare` prints the median CPU ms per call of
both servers and their ratio (baseline / docgate: the req/s ratio two idle cores would give).

Install: ``apt-get install -y nghttp2-client`` (Debian/Ubuntu), ``brew install nghttp2``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import statistics
import struct
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.loadgen import Call, call_once
from bench.runner import Comparison, LoadShape, Stats, percentile, round_order

CLIENTS = 4
STREAMS = 16
INSTALL_HINT = (
    "h2load not found: install nghttp2's client (Debian/Ubuntu: apt-get install -y "
    "nghttp2-client; macOS: brew install nghttp2)"
)
# Every caller's share of a round is at least this long (h2load's -D takes whole seconds).
_MIN_SECONDS = 1


class H2loadMissing(RuntimeError):
    """h2load is not installed (the message says how to install it)."""


def executable() -> str:
    """The h2load binary, or H2loadMissing."""
    found = shutil.which("h2load")
    if found is None:
        raise H2loadMissing(INSTALL_HINT)
    return found


def grpc_frame(message: bytes) -> bytes:
    """One uncompressed gRPC length-prefixed message (flag byte, 4-byte big-endian length)."""
    return struct.pack(">BI", 0, len(message)) + message


@dataclass(frozen=True)
class H2Result:
    """What one h2load process reports."""

    seconds: float
    succeeded: int  # HTTP 2xx
    failed: int
    errored: int
    timeout: int
    data_bytes: int
    latencies_s: tuple[float, ...]


_FINISHED = re.compile(r"finished in ([\d.]+)(us|ms|s),")
_REQUESTS = re.compile(
    r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
    r"(\d+) timeout"
)
_DATA = re.compile(r"\((\d+)\) data")
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse(output: str, log: str) -> H2Result:
    """h2load's summary (stdout) and per-request log (tab-separated: start µs, status, µs)."""
    finished = _FINISHED.search(output)
    requests = _REQUESTS.search(output)
    data = _DATA.search(output)
    if finished is None or requests is None or data is None:
        raise RuntimeError(f"unexpected h2load output:\n{output[-2000:]}")
    latencies = []
    for line in log.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1].startswith("2"):
            latencies.append(int(parts[2]) / 1e6)
    succeeded, failed, errored, timeout = (int(group) for group in requests.groups())
    return H2Result(
        seconds=float(finished.group(1)) * _UNIT[finished.group(2)],
        succeeded=succeeded,
        failed=failed,
        errored=errored,
        timeout=timeout,
        data_bytes=int(data.group(1)),
        latencies_s=tuple(latencies),
    )


def run_h2load(
    target: str,
    method: str,
    call: Call,
    duration_s: int,
    warmup_s: int = 1,
    clients: int = CLIENTS,
    streams: int = STREAMS,
) -> H2Result:
    """One ``h2load -c clients -m streams`` for ``duration_s`` seconds sending ``call``."""
    request, metadata = call
    with tempfile.TemporaryDirectory(prefix="docgate-h2load-") as work:
        body = Path(work) / "request.bin"
        body.write_bytes(grpc_frame(request))
        log_path = Path(work) / "requests.log"
        argv = [
            executable(),
            f"http://{target}{method}",
            "-c",
            str(clients),
            "-m",
            str(streams),
            "-t",
            "1",
            "-D",
            str(duration_s),
            f"--warm-up-time={warmup_s}",
            "-d",
            str(body),
            f"--log-file={log_path}",
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ]
        for key, value in metadata:
            argv += ["-H", f"{key}: {value}"]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration_s + warmup_s + 60, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"h2load exited {done.returncode}: {done.stderr[-2000:]}")
        log = log_path.read_text() if log_path.exists() else ""
    return parse(done.stdout, log)


def _one_per_caller(calls: Sequence[Call]) -> list[Call]:
    """The first call of each distinct metadata (= caller), in order."""
    seen: dict[tuple[tuple[str, str], ...], Call] = {}
    for call in calls:
        seen.setdefault(call[1], call)
    return list(seen.values())


def summarize(results: Sequence[tuple[H2Result, int]]) -> Stats:
    """One round: (result, size of an OK answer's frame) per caller, added up."""
    latencies: list[float] = []
    answered = seconds = 0.0
    errors: dict[str, int] = {}
    for result, frame_size in results:
        ok = min(result.succeeded, result.data_bytes // frame_size)
        answered += ok
        seconds += result.seconds
        latencies.extend(result.latencies_s)
        for name, count in (
            ("NO_DATA", result.succeeded - ok),
            ("HTTP_FAILED", result.failed),
            ("ERRORED", result.errored),
            ("TIMEOUT", result.timeout),
        ):
            if count:
                errors[name] = errors.get(name, 0) + count
    ordered = sorted(latencies)
    return Stats(
        rps=answered / seconds if seconds else float("nan"),
        p50_ms=percentile(ordered, 0.50) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        calls=int(answered),
        errors=errors,
    )


class H2loadRunner:
    """Alternating rounds like bench.runner.Runner, with h2load as the client."""

    def __init__(self, shape: LoadShape, clients: int = CLIENTS, streams: int = STREAMS) -> None:
        executable()  # fail early, with the install hint
        self.shape = shape
        self.clients = clients
        self.streams = streams
        # Per method, per target: the server's CPU ms per answered call, one value per round.
        self.cpu_ms: dict[str, dict[str, list[float]]] = {}

    def _round(
        self, target: str, method: str, picked: Sequence[Call], sizes: Sequence[int], total_s: float
    ) -> tuple[Stats, float]:
        each = max(_MIN_SECONDS, round(total_s / len(picked)))
        pid = server_pid(target)
        results = []
        for call, size in zip(picked, sizes, strict=True):
            # Warm-up is the round's first caller-length run, unmeasured: h2load's own warm-up
            # would serve calls that the CPU reading counts and the answer count does not.
            before = cpu_seconds(pid)
            result = run_h2load(target, method, call, each, 0, self.clients, self.streams)
            results.append((result, size, cpu_seconds(pid) - before))
        stats = summarize([(result, size) for result, size, _ in results])
        cpu = sum(spent for _, _, spent in results)
        return stats, (cpu / stats.calls * 1000 if stats.calls else float("nan"))

    def compare(
        self, targets: Mapping[str, str], method: str, calls: tuple[Call, ...]
    ) -> Comparison:
        picked = _one_per_caller(calls)
        comparison = Comparison(rounds={name: [] for name in targets})
        sizes: dict[str, list[int]] = {}
        for name, target in targets.items():
            # The OK answer's size on this target (and a check that it is OK at all).
            sizes[name] = [len(grpc_frame(call_once(target, method, call))) for call in picked]
            self._round(target, method, picked, sizes[name], self.shape.initial_warmup_s)
        cpu: dict[str, list[float]] = {name: [] for name in targets}
        for round_ in range(self.shape.rounds):
            for name, target in round_order(list(targets.items()), round_):
                warm = self.shape.warmup_s
                if warm > 0:
                    run_h2load(target, method, picked[0], max(1, round(warm)), 0)
                stats, per_call = self._round(
                    target, method, picked, sizes[name], self.shape.duration_s
                )
                comparison.rounds[name].append(stats)
                cpu[name].append(per_call)
        self.cpu_ms[method] = cpu
        print(cpu_line(method, cpu), flush=True)
        return comparison


def server_pid(target: str) -> int | None:
    """The process listening on ``target``'s port (None when it cannot be seen)."""
    port = int(target.rpartition(":")[2])
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of ``pid`` so far (nan when unknown)."""
    if pid is None:
        return float("nan")
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return float("nan")
    return float(times.user + times.system)


def cpu_line(method: str, cpu: Mapping[str, Sequence[float]]) -> str:
    """One line: each target's median CPU ms per call and baseline/docgate."""
    medians = {name: statistics.median(values) for name, values in cpu.items() if values}
    parts = [f"{name} {value:.3f} ms" for name, value in medians.items()]
    line = f"[h2load] {method.rsplit('/', 1)[-1]} server CPU per call: " + ", ".join(parts)
    if len(medians) == 2:
        first, second = medians.values()
        line += f"  -> {first / second:.2f}x (first / second: the CPU-bound req/s ratio)"
    return line


def median_ratio(comparison: Comparison, service: str, baseline: str) -> float:
    """service / baseline of the rounds' median req/s (nan when a side is missing)."""
    a, b = comparison.rounds.get(service), comparison.rounds.get(baseline)
    if not a or not b:
        return float("nan")
    return statistics.median(s.rps for s in a) / statistics.median(s.rps for s in b)
