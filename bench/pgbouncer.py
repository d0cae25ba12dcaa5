"""What DOCGATE_DATABASE_POOLER=transaction behind PgBouncer costs: ``python -m bench --pgbouncer``
(or ``python -m bench.pgbouncer``).

One fresh embedded database, seeded as `make bench` seeds it, and three `docgate serve`
processes side by side on it:

* ``direct``: PostgreSQL directly, the default settings (asyncpg's and SQLAlchemy's statement
  caches on, statement_timeout sent at connect);
* ``direct-pc-off``: the same with DOCGATE_PRINCIPAL_CACHE=off, because the pooler setting
  turns the principal cache off too (it needs LISTEN): every call reads its caller's roles;
* ``direct+txn``: PostgreSQL directly with DOCGATE_DATABASE_POOLER=transaction — the setting's
  own cost (every statement parsed and planned on every call, no principal cache), without
  the extra hop;
* ``pgbouncer``: through a local PgBouncer in transaction mode (tests/pgbouncer.py, with
  SERVER_CONNECTIONS server connections) with DOCGATE_DATABASE_POOLER=transaction — what a
  deployment behind PgBouncer runs.

Rounds alternate between the four (bench.runner), each round starting one server later, so
that with a multiple of four rounds each is measured first, second, … equally often (on a
loaded box the position in a round weighs as much as the code: bench/README.md, "Writes"),
for GetDocument, ListDocuments and CreateDocument; the report is each side's median of the rounds
and the ratios pgbouncer ÷ direct (all of it), direct+txn ÷ direct (the setting),
direct+txn ÷ direct-pc-off (the statement caches alone) and pgbouncer ÷ direct+txn (the
hop). The three servers, PostgreSQL, PgBouncer and the load generator share this machine's
cores, so the ratios say what the settings and the hop cost here. Exits 2 when pgbouncer is
not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import calls, database, procs
from bench.loadgen import call_once
from bench.runner import Comparison, LoadShape, Runner, Stats
from tests import pgbouncer

DIRECT = "direct"
NO_PRINCIPAL_CACHE = "direct-pc-off"
DIRECT_TXN = "direct+txn"
THROUGH = "pgbouncer"
# PgBouncer's server connections: docgate's default pool (10), so the hop is what is measured,
# not a queue for too few backends.
SERVER_CONNECTIONS = 10
RESULTS = Path(__file__).resolve().parent / "results"
RATIOS = (
    ("pgbouncer / direct", THROUGH, DIRECT),
    ("direct+txn / direct", DIRECT_TXN, DIRECT),
    ("direct+txn / direct-pc-off", DIRECT_TXN, NO_PRINCIPAL_CACHE),
    ("pgbouncer / direct+txn", THROUGH, DIRECT_TXN),
)


def _log(message: str) -> None:
    print(f"[bench.pgbouncer {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} CPUs"


def _line(name: str, label: str, stats: Stats) -> str:
    errors = sum(stats.errors.values())
    return (
        f"{name:14} {label:13} {stats.rps:8.0f} calls/s  p50 {stats.p50_ms:6.2f} ms"
        f"  p99 {stats.p99_ms:6.2f} ms  errors {errors}"
    )


def _ratios(name: str, result: Comparison) -> dict[str, dict[str, float]]:
    medians = {
        side: result.median(side) for side in (DIRECT, NO_PRINCIPAL_CACHE, DIRECT_TXN, THROUGH)
    }
    out: dict[str, dict[str, float]] = {}
    for label, top, bottom in RATIOS:
        over, under = medians[top], medians[bottom]
        if over is None or under is None:
            raise RuntimeError(f"{name}: a server was not measured")
        out[label] = {"rps": over.rps / under.rps, "p50": over.p50_ms / under.p50_ms}
    return out


def run(docs: int, shape: LoadShape, results_dir: Path = RESULTS) -> int:
    if not pgbouncer.installed():
        print(f"bench: {pgbouncer.INSTALL_HINT}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="docgate-bench-pgbouncer-"))
    # Registered before PostgreSQL starts: atexit runs last-in first-out, so the embedded
    # server (stopped at exit by its wheel) is stopped before its directory goes.
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    with ExitStack() as stack:
        _log(f"seeding {docs} documents ({_load()})")
        url = asyncio.run(database.create_database(work / "pg"))
        callers, targets = asyncio.run(database.seed(url, docs))
        through = stack.enter_context(
            pgbouncer.running(work / "pgbouncer", url, SERVER_CONNECTIONS)
        )
        secret = database.new_secret()
        env = {"DOCGATE_DATABASE_URL": url, "DOCGATE_JWT_SECRET": secret}
        txn = {"DOCGATE_DATABASE_POOLER": "transaction"}
        # `docgate serve` migrates at start, here through PgBouncer too: the schema is at head
        # already (seeded directly), so that is a read of alembic_version by one client.
        servers = {
            DIRECT: procs.serve_docgate(stack, DIRECT, env, work),
            NO_PRINCIPAL_CACHE: procs.serve_docgate(
                stack, NO_PRINCIPAL_CACHE, {**env, "DOCGATE_PRINCIPAL_CACHE": "off"}, work
            ),
            DIRECT_TXN: procs.serve_docgate(stack, DIRECT_TXN, {**env, **txn}, work),
            THROUGH: procs.serve_docgate(
                stack, THROUGH, {**env, **txn, "DOCGATE_DATABASE_URL": through}, work
            ),
        }
        headers = [calls.metadata(caller, secret) for caller in callers]
        scenarios = {
            calls.GET_DOCUMENT: calls.get_calls(headers, targets),
            calls.LIST_DOCUMENTS: calls.list_calls(headers),
            calls.CREATE_DOCUMENT: calls.create_calls(headers),
        }
        for method, call_set in scenarios.items():  # every server answers every kind of call
            for target in servers.values():
                call_once(target, method, call_set[0])
        report: dict[str, Any] = {
            "docs": docs,
            "shape": shape.__dict__,
            "server_connections": SERVER_CONNECTIONS,
            "load_before": os.getloadavg(),
            "scenarios": {},
        }
        _log(
            f"{shape.rounds} rounds x {shape.duration_s:g}s, {shape.processes} load processes"
            f" x {shape.concurrency} calls in flight ({_load()})"
        )
        summary: list[str] = []
        with ProcessPoolExecutor(max_workers=shape.processes) as executor:
            runner = Runner(executor, shape)
            for method, call_set in scenarios.items():
                name = method.rsplit("/", 1)[1]
                result = runner.compare(servers, method, call_set, rotate=True)
                ratios = _ratios(name, result)
                report["scenarios"][name] = {**result.to_json(), "ratios": ratios}
                for side in servers:
                    stats = result.median(side)
                    assert stats is not None
                    summary.append(_line(name, side, stats))
                for label, ratio in ratios.items():
                    summary.append(
                        f"{name:14} {label:27} calls/s {ratio['rps']:.2f}  p50 {ratio['p50']:.2f}"
                    )
                _log(f"{name} done ({_load()})")
        report["load_after"] = os.getloadavg()
        print(f"\n{docs} documents; medians of {shape.rounds} rounds; {_load()}")
        print("\n".join(summary))
        results_dir.mkdir(parents=True, exist_ok=True)
        out = results_dir / f"pgbouncer-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(report, indent=2))
        _log(f"results in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pgbouncer", description=__doc__)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    shape = LoadShape(args.processes, args.concurrency, 0.5, args.duration, args.rounds, 1.0)
    return run(args.docs, shape)


if __name__ == "__main__":
    sys.exit(main())
