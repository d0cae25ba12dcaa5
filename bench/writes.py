"""``python -m bench.writes [--ref REF]``: what the audit trail costs writes.

Two docgate servers on one database, side by side in one run: ``before`` is the code at REF
(default ``main``: the commit before the audit trail), checked out in a temporary ``git
worktree`` and run with this venv's interpreter; ``docgate`` is this tree. Both serve the same
schema (this tree's migrations, so ``before`` simply never writes audit_entries). Scenarios:
GetDocument (must not change: reads leave no entry), CreateDocument (the six bench callers)
and AssignRole (the admin assigns one role round robin over the 1,000 bench owners; after the
first pass every assignment is a no-op for ``before`` and still an audited call for
``docgate``: the least favourable case). Rounds alternate before, docgate, before, … and the
report shows medians and the ratio docgate / before. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
from docgate.v1 import roles_pb2

from bench import calls, database, procs, report
from bench.loadgen import Call, Metadata, call_once
from bench.main import _grow, _prepare
from bench.runner import Comparison, LoadShape, Runner

BEFORE, AFTER = "before", "docgate"
ROLE = "bench_writer"
ASSIGN_ROLE = "/docgate.v1.RoleService/AssignRole"
RESULTS = Path(__file__).resolve().parent / "results"
# Runs docgate from another tree: its src first on sys.path, its generated code for docgate.v1.
_LAUNCH = (
    "import sys; root = sys.argv[1]; sys.path.insert(0, root + '/src'); import docgate; "
    "docgate.__path__.append(root + '/generated/docgate'); from docgate.cli import main; "
    "sys.exit(main(['serve']))"
)


def _log(message: str) -> None:
    print(f"[bench.writes {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _worktree(ref: str, into: Path) -> Path:
    tree = into / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), ref],
        cwd=procs.REPO, check=True, capture_output=True,
    )  # fmt: skip
    atexit.register(
        subprocess.run, ["git", "worktree", "remove", "--force", str(tree)], cwd=procs.REPO
    )
    return tree


def _start(stack: ExitStack, name: str, argv: list[str], url: str, secret: str, logs: Path) -> str:
    port = procs.free_port()
    env = {
        "DOCGATE_DATABASE_URL": url,
        "DOCGATE_JWT_SECRET": secret,
        "DOCGATE_LISTEN": f"{procs.HOST}:{port}",
        "DOCGATE_ALEMBIC_INI": str(procs.REPO / "alembic.ini"),
    }
    return stack.enter_context(procs.server(name, argv, env, port, logs))


async def _owners_and_role(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO roles (name) VALUES ($1) ON CONFLICT DO NOTHING", ROLE)
        rows = await conn.fetch(
            "SELECT id FROM users WHERE username LIKE 'bench_owner_%' ORDER BY id"
        )
        return [str(row["id"]) for row in rows]
    finally:
        await conn.close()


def _assign_calls(admin: Metadata, owners: list[str]) -> tuple[Call, ...]:
    return tuple(
        (roles_pb2.AssignRoleRequest(user_id=uid, role=ROLE).SerializeToString(), admin)
        for uid in owners
    )


def _measure(
    runner: Runner, servers: dict[str, str], method: str, call_set: tuple[Call, ...]
) -> Comparison:
    for target in servers.values():
        for call in call_set[:4]:
            call_once(target, method, call)  # raises on a wrong status: nothing to measure
    return runner.compare(servers, method, call_set)


def _ratio(comparison: Comparison) -> dict[str, float] | None:
    before, after = comparison.median(BEFORE), comparison.median(AFTER)
    if before is None or after is None:
        return None
    return {"rps": after.rps / before.rps, "p50": after.p50_ms / before.p50_ms}


def _table(results: dict[str, Comparison]) -> str:
    lines = [f"{'scenario':<16}{'target':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"]
    for name, comparison in results.items():
        for target in (BEFORE, AFTER):
            stats = comparison.median(target)
            if stats is not None:
                lines.append(
                    f"{name:<16}{target:<10}{stats.rps:>10,.1f}{stats.p50_ms:>10,.1f}"
                    f"{stats.p99_ms:>10,.1f}"
                )
        found = _ratio(comparison)
        if found is not None:
            lines.append(
                f"{'':<16}{'ratio':<10}{found['rps']:>9.2f}x{found['p50']:>9.2f}x"
                "             (docgate / before)"
            )
        lines.append("")
    return "\n".join(lines)


def run(ref: str, shape: LoadShape, docs: int, after_first: bool = False) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="docgate-bench-writes-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    tree = _worktree(ref, work)
    revision = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=procs.REPO, capture_output=True, text=True
    ).stdout.strip()
    _log(f"before = {ref} ({revision}) in {tree}; starting embedded PostgreSQL")
    url, callers, _ = asyncio.run(_prepare(work / "pg", 0))
    _, found = asyncio.run(_grow(url, docs, callers))
    owners = asyncio.run(_owners_and_role(url))
    secret = database.new_secret()
    headers = [calls.metadata(c, secret) for c in callers]
    admin = next(md for c, md in zip(callers, headers, strict=True) if c.role == "admin")
    logs = RESULTS / f"writes-logs-{time.strftime('%Y%m%d-%H%M%S')}"
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, Comparison] = {}
    with ExitStack() as stack:
        executor = stack.enter_context(
            ProcessPoolExecutor(shape.processes, mp_context=multiprocessing.get_context("spawn"))
        )
        servers = {
            BEFORE: _start(
                stack, BEFORE, [sys.executable, "-c", _LAUNCH, str(tree)], url, secret, logs
            ),
            AFTER: _start(stack, AFTER, [procs.docgate_executable(), "serve"], url, secret, logs),
        }
        if after_first:  # the order of each round: to see what the position alone does
            servers = {AFTER: servers[AFTER], BEFORE: servers[BEFORE]}
        runner = Runner(executor, shape)
        scenarios = (
            ("GetDocument", calls.GET_DOCUMENT, calls.get_calls(headers, found)),
            ("CreateDocument", calls.CREATE_DOCUMENT, calls.create_calls(headers)),
            ("AssignRole", ASSIGN_ROLE, _assign_calls(admin, owners)),
        )
        for name, method, call_set in scenarios:
            _log(f"scenario {name} ({len(call_set)} distinct calls)")
            results[name] = _measure(runner, servers, method, call_set)
    print()
    print(_table(results))
    document = {
        "ref": ref,
        "after_first": after_first,
        "before": revision,
        "shape": shape.__dict__,
        "scenarios": {name: c.to_json() for name, c in results.items()},
        "ratios": {name: _ratio(c) for name, c in results.items()},
    }
    path = RESULTS / f"writes-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report.write_json(path, document)
    print(f"results: {path}")
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.writes", description=__doc__)
    parser.add_argument("--ref", default="main", help="the code to compare with (git ref)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument(
        "--after-first", action="store_true", help="measure docgate first in every round"
    )
    args = parser.parse_args(argv)
    shape = LoadShape(
        processes=2, concurrency=args.concurrency, warmup_s=1.0, duration_s=args.duration,
        rounds=args.rounds, initial_warmup_s=2.0,
    )  # fmt: skip
    run(args.ref, shape, args.docs, args.after_first)
    return 0


if __name__ == "__main__":
    sys.exit(main())
