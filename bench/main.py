"""One bench run: database, servers, scenarios, report."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import multiprocessing
import os
import platform
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from bench import calls, database, projects, report, targets
from bench.database import Caller
from bench.h2load import H2loadRunner
from bench.loadgen import Call, Metadata
from bench.runner import Comparison, LoadShape, Runner


@dataclass(frozen=True)
class Options:
    docs: tuple[int, ...]
    # Project counts for GetProject/ListProjects; empty skips them.
    projects: tuple[int, ...]
    shape: LoadShape
    results_dir: Path
    quick: bool
    # The load comes from h2load (bench/h2load.py) instead of the Python load generator.
    h2load: bool = False


@dataclass
class Session:
    """What every scenario needs: the servers, the load runner and the callers."""

    url: str
    runner: Runner | H2loadRunner
    servers: targets.Targets
    callers: list[Caller]
    headers: list[Metadata]

    @property
    def by_id(self) -> dict[str, Caller]:
        return {c.user_id: c for c in self.callers}


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def _prepare(data_dir: Path, docs: int) -> tuple[str, list[Caller], float]:
    url = await database.create_database(data_dir)
    conn = await asyncpg.connect(url)
    try:
        callers = await database.seed_users(conn)
        seconds = await database.seed_documents(conn, docs)
    finally:
        await conn.close()
    return url, callers, seconds


async def _grow(url: str, docs: int, callers: list[Caller]) -> tuple[float, list[list[str]]]:
    conn = await asyncpg.connect(url)
    try:
        seconds = await database.seed_documents(conn, docs)
        found = [await database.visible_targets(conn, caller) for caller in callers]
    finally:
        await conn.close()
    return seconds, found


async def _grow_projects(
    url: str, total: int, callers: list[Caller]
) -> tuple[float, list[list[str]]]:
    conn = await asyncpg.connect(url)
    try:
        seconds = await projects.seed_projects(conn, total)
        found = [await projects.visible_projects(conn, caller) for caller in callers]
    finally:
        await conn.close()
    return seconds, found


def scenario(session: Session, method: str, call_set: tuple[Call, ...]) -> Comparison:
    """Probe both servers, then measure those that answer correctly."""
    runnable: dict[str, str] = {}
    unavailable = dict(session.servers.missing)
    answers: dict[str, list[str]] = {}
    for name, target in session.servers.running.items():
        found, problem = targets.probe(
            target, method, call_set[: targets.PROBE_CALLS], session.by_id
        )
        if problem is None:
            runnable[name] = target
            answers[name] = found
        else:
            unavailable[name] = problem
    if len(set(map(tuple, answers.values()))) > 1:
        _log(f"warning: {method} answers differ between {sorted(answers)} (compare the ids)")
    comparison = session.runner.compare(runnable, method, call_set)
    comparison.unavailable = unavailable
    return comparison


def _loadavg() -> list[float]:
    """1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def _git_revision() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or "unknown"
    return "unknown"


def _measure(
    session: Session,
    meta: dict[str, Any],
    results: dict[str, Comparison],
    name: str,
    method: str,
    call_set: tuple[Call, ...],
) -> None:
    _log(f"scenario {name}")
    meta["loadavg"][name] = _loadavg()
    results[name] = scenario(session, method, call_set)


def _run_sizes(session: Session, docs: tuple[int, ...], meta: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Comparison] = {}
    for index, size in enumerate(docs):
        _log(f"seeding documents up to {size:,}")
        seconds, found = asyncio.run(_grow(session.url, size, session.callers))
        meta["seed_seconds"][str(size)] = round(seconds, 1)
        _log(f"{size:,} documents ready ({seconds:.1f}s)")
        if index == 0:
            user_calls = calls.current_user_calls(session.headers)
            _measure(session, meta, results, "GetCurrentUser", calls.GET_CURRENT_USER, user_calls)
        get_calls = calls.get_calls(session.headers, found)
        _measure(session, meta, results, f"GetDocument@{size}", calls.GET_DOCUMENT, get_calls)
        list_calls = calls.list_calls(session.headers)
        _measure(session, meta, results, f"ListDocuments@{size}", calls.LIST_DOCUMENTS, list_calls)
    return results


def _run_projects(
    session: Session, sizes: tuple[int, ...], meta: dict[str, Any]
) -> dict[str, Comparison]:
    results: dict[str, Comparison] = {}
    for size in sizes:
        _log(f"seeding projects up to {size:,} ({projects.FEEDBACK_PER_PROJECT} feedback each)")
        seconds, found = asyncio.run(_grow_projects(session.url, size, session.callers))
        meta["project_seed_seconds"][str(size)] = round(seconds, 1)
        _log(f"{size:,} projects ready ({seconds:.1f}s)")
        get_calls = calls.get_project_calls(session.headers, found)
        _measure(session, meta, results, f"GetProject@{size}", calls.GET_PROJECT, get_calls)
        list_calls = calls.list_project_calls(session.headers)
        _measure(session, meta, results, f"ListProjects@{size}", calls.LIST_PROJECTS, list_calls)
    return results


def _finish(options: Options, meta: dict[str, Any], results: dict[str, Comparison]) -> Path:
    print()
    print(report.table(results))
    scale: dict[str, Any] = {}
    families = (
        (options.docs, "docs", ("GetDocument", "ListDocuments")),
        (options.projects, "projects", ("GetProject", "ListProjects")),
    )
    for sizes, unit, rpcs in families:
        if len(sizes) < 2:
            continue
        small, large = min(sizes), max(sizes)
        for rpc in rpcs:
            found = report.scaling(results, rpc, small, large)
            scale[rpc] = {"small": small, "large": large, "latency_ratio": found}
            print("\n".join(report.scaling_lines(rpc, small, large, found, unit)))
    document = {
        "meta": meta,
        "scenarios": {name: c.to_json() for name, c in results.items()},
        "ratios": {name: report.ratios(c) for name, c in results.items()},
        "scaling": scale,
    }
    path = options.results_dir / f"bench-{meta['started']}.json"
    report.write_json(path, document)
    print(f"\nresults: {path}")
    return path


def run(options: Options) -> Path:
    started = time.strftime("%Y%m%d-%H%M%S")
    meta: dict[str, Any] = {
        "started": started,
        "git": _git_revision(),
        "quick": options.quick,
        "docs": list(options.docs),
        "projects": list(options.projects),
        "shape": asdict(options.shape),
        "cpus": multiprocessing.cpu_count(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "load": "h2load" if options.h2load else "python",
        "seed_seconds": {},
        "project_seed_seconds": {},
        # The box's load average as each scenario starts: other work on it shows up here.
        "loadavg": {},
    }
    work = Path(tempfile.mkdtemp(prefix="docgate-bench-"))
    # Registered before the database starts, so it runs after the database's own cleanup.
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    _log(f"starting embedded PostgreSQL in {work}")
    url, callers, _ = asyncio.run(_prepare(work, 0))
    secret = database.new_secret()
    log_dir = options.results_dir / f"logs-{started}"
    with ExitStack() as stack:
        executor = stack.enter_context(
            ProcessPoolExecutor(
                options.shape.processes, mp_context=multiprocessing.get_context("spawn")
            )
        )
        servers = targets.start(stack, url, secret, log_dir)
        _log(f"servers: {servers.running} {servers.missing or ''}")
        session = Session(
            url=url,
            runner=(
                H2loadRunner(options.shape) if options.h2load else Runner(executor, options.shape)
            ),
            servers=servers,
            callers=callers,
            headers=[calls.metadata(c, secret) for c in callers],
        )
        results = _run_sizes(session, options.docs, meta)
        results.update(_run_projects(session, options.projects, meta))
    return _finish(options, meta, results)
