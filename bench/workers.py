"""Workers mode: GetDocument and ListDocuments throughput of `docgate serve --workers N`.

``python -m bench.workers [--docs 10000] [--workers 1,2] [--rounds 3] [--duration 5]``

One fresh embedded database (seeded as `make bench` seeds it), then for each worker count a
`docgate serve` with DOCGATE_WORKERS=N and, per scenario, alternating rounds of h2load
(bench/h2load.py). h2load opens CONNECTIONS connections: the kernel hashes each to one worker
(SO_REUSEPORT), so it needs enough of them for every worker to get a share. The report is the
median req/s of the rounds and its ratio to one worker. The load generator runs on the same
machine and takes CPU from the workers: on a 2-core box two workers compete with h2load and
PostgreSQL, so the factor measured here is a floor (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench import calls, database, procs
from bench.h2load import run_h2load
from bench.loadgen import call_once

CONNECTIONS = 16
STREAMS = 4


def _wait_all_workers(log: Path, count: int, timeout_s: float = 60) -> None:
    if count == 1:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if f"all {count} workers serving" in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"not all {count} workers serving (log: {log})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    secret = database.new_secret()
    results: dict[tuple[str, int], list[float]] = {}
    work = tempfile.mkdtemp(prefix="docgate-bench-workers-")
    # Registered before PostgreSQL starts: atexit runs last-in first-out, so the embedded
    # server (stopped at exit by its wheel) is stopped before its directory goes.
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    url = asyncio.run(database.create_database(Path(work) / "pg"))
    callers, targets = asyncio.run(database.seed(url, args.docs, analyze=True))
    caller = next(i for i, c in enumerate(callers) if c.role == "paid_user")
    headers = [calls.metadata(callers[caller], secret)]
    scenarios = {
        "GetDocument": (calls.GET_DOCUMENT, calls.get_calls(headers, [targets[caller]])[0]),
        "ListDocuments": (calls.LIST_DOCUMENTS, calls.list_calls(headers)[0]),
    }
    for count in counts:
        port = procs.free_port()
        env = {
            "DOCGATE_DATABASE_URL": url,
            "DOCGATE_JWT_SECRET": secret,
            "DOCGATE_LISTEN": f"{procs.HOST}:{port}",
            "DOCGATE_WORKERS": str(count),
        }
        logs = Path(work) / f"w{count}"
        logs.mkdir()
        with ExitStack() as server:
            target = server.enter_context(
                procs.server("docgate", [procs.docgate_executable(), "serve"], env, port, logs)
            )
            _wait_all_workers(logs / "docgate.log", count)
            for name, (method, call) in scenarios.items():
                call_once(target, method, call)  # answers OK (h2load sees only HTTP)
                for _ in range(args.rounds):
                    got = run_h2load(
                        target, method, call, args.duration,
                        clients=CONNECTIONS, streams=STREAMS,
                    )  # fmt: skip
                    if got.failed or got.errored:
                        print(f"warning: {name} x{count}: {got.failed + got.errored} failed")
                    rate = got.succeeded / got.seconds
                    results.setdefault((name, count), []).append(rate)
                    print(f"{name} workers={count}: {rate:.0f} req/s", flush=True)
    print(f"\n{'scenario':<16}" + "".join(f"{f'{n} worker(s)':>16}" for n in counts) + "  ratio")
    for name in ("GetDocument", "ListDocuments"):
        medians = [statistics.median(results[(name, n)]) for n in counts]
        ratio = medians[-1] / medians[0]
        print(f"{name:<16}" + "".join(f"{m:>16.0f}" for m in medians) + f"  {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
