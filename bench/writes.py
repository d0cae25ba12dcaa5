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
import os
import shutil
import statistics
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
from bench.runner import Comparison, LoadShape, Runner, Stats

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


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def _cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User + system CPU of ``pid`` so far (its threads'; with ``reaped``, also that of its
    children that have exited: PostgreSQL's postmaster reaps its backends)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    used = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        used += int(fields[13]) + int(fields[14])  # cutime, cstime
    return used / _TICK


def _postgres_cpu(postmaster: int) -> float:
    """All of PostgreSQL's CPU so far: the postmaster, the backends that have exited, the live
    ones (a backend alive at one reading and gone at the next moves from live to reaped)."""
    live = sum(_cpu_seconds(pid) for pid in _children(postmaster))
    return _cpu_seconds(postmaster, reaped=True) + live


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def _listening(target: str) -> int:
    """The pid of the server started with DOCGATE_LISTEN=target."""
    wanted = f"DOCGATE_LISTEN={target}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if wanted in environ:
                return int(entry.name)
    raise RuntimeError(f"no process serves {target}")


async def _postmaster(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        fields = _stat(int(await conn.fetchval("SELECT pg_backend_pid()")))
    finally:
        await conn.close()
    assert fields is not None, "PostgreSQL runs on another machine: no CPU accounting"
    return int(fields[1])


class _CpuRunner(Runner):
    """A Runner that also charges each measured round the CPU the target's server process and
    the whole PostgreSQL (its backends serve only the target being measured, and its sealer)
    spent, per call: on a loaded box this moves far less than req/s does."""

    def __init__(
        self, executor: ProcessPoolExecutor, shape: LoadShape, servers: dict[str, int], pg: int
    ) -> None:
        super().__init__(executor, shape)
        self._servers, self._pg = servers, pg
        self.cpu: dict[str, list[tuple[float, float]]] = {t: [] for t in servers}

    def measure(
        self, target: str, method: str, calls: tuple[Call, ...], warmup_s: float, duration_s: float
    ) -> Stats:
        server = self._servers[target]
        before = _cpu_seconds(server), _postgres_cpu(self._pg)
        stats = super().measure(target, method, calls, warmup_s, duration_s)
        after = _cpu_seconds(server), _postgres_cpu(self._pg)
        if duration_s == self.shape.duration_s and stats.rps > 0:
            # Calls of the whole load (warm-up included) at the measured rate, over the time
            # the load ran (start delay and collection excluded).
            load_calls = stats.rps * (warmup_s + duration_s)
            server_ms = (after[0] - before[0]) * 1000 / load_calls
            pg_ms = (after[1] - before[1]) * 1000 / load_calls
            self.cpu[target].append((server_ms, pg_ms))
        return stats


def _cpu_medians(runner: _CpuRunner, servers: dict[str, str]) -> dict[str, dict[str, float]]:
    out = {}
    for name, target in servers.items():
        samples = runner.cpu[target]
        if samples:
            out[name] = {
                "server_ms": statistics.median(s[0] for s in samples),
                "postgres_ms": statistics.median(s[1] for s in samples),
                "total_ms": statistics.median(s[0] + s[1] for s in samples),
            }
        runner.cpu[target] = []
    return out


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


def _table(results: dict[str, Comparison], cpu: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        f"{'scenario':<16}{'target':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'cpu ms/call: server':>22}{'postgres':>10}"
    ]
    for name, comparison in results.items():
        for target in (BEFORE, AFTER):
            stats = comparison.median(target)
            used = cpu.get(name, {}).get(target)
            if stats is not None:
                lines.append(
                    f"{name:<16}{target:<10}{stats.rps:>10,.1f}{stats.p50_ms:>10,.1f}"
                    f"{stats.p99_ms:>10,.1f}"
                    + (
                        ""
                        if used is None
                        else f"{used['server_ms']:>22.2f}{used['postgres_ms']:>10.2f}"
                    )
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
    cpu: dict[str, dict[str, dict[str, float]]] = {}
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
        pids = {target: _listening(target) for target in servers.values()}
        runner = _CpuRunner(executor, shape, pids, asyncio.run(_postmaster(url)))
        scenarios = (
            ("GetDocument", calls.GET_DOCUMENT, calls.get_calls(headers, found)),
            ("CreateDocument", calls.CREATE_DOCUMENT, calls.create_calls(headers)),
            ("AssignRole", ASSIGN_ROLE, _assign_calls(admin, owners)),
        )
        for name, method, call_set in scenarios:
            _log(f"scenario {name} ({len(call_set)} distinct calls)")
            results[name] = _measure(runner, servers, method, call_set)
            cpu[name] = _cpu_medians(runner, servers)
    print()
    print(_table(results, cpu))
    document = {
        "ref": ref,
        "after_first": after_first,
        "before": revision,
        "shape": shape.__dict__,
        "scenarios": {name: c.to_json() for name, c in results.items()},
        "ratios": {name: _ratio(c) for name, c in results.items()},
        # Median CPU ms per call of the rounds: the server process, all of PostgreSQL.
        "cpu_ms_per_call": cpu,
        "load_average": os.getloadavg(),
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
