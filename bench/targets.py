"""The two servers under test, started side by side on the same database."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from bench import calls, procs
from bench.database import Caller
from bench.loadgen import Call, call_once
from bench.report import BASELINE, OBSERVED, SERVICE

# How many leading calls of a scenario are sent once, on each target, before measuring it.
PROBE_CALLS = 12


@dataclass
class Targets:
    """Addresses of the running servers, and why a server is missing."""

    running: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


# docgate as measured: no metrics, no access log (text logs at INFO, as before either existed).
QUIET = {"DOCGATE_ACCESS_LOG": "false"}
# --observed: a second docgate with what production turns on — Prometheus metrics (scraped by
# nobody: a scrape is the scraper's cost, not a call's) and a JSON access record per call.
OBSERVED_ENV = {"DOCGATE_ACCESS_LOG": "true", "DOCGATE_LOG_FORMAT": "json"}


def start(
    stack: ExitStack, url: str, secret: str, log_dir: Path, *, observed: bool = False
) -> Targets:
    """Start the baseline and docgate (each one process), and with ``observed`` a second
    docgate with metrics and JSON access logs on; a docgate that fails to start is reported as
    not available, the baseline must start."""
    log_dir.mkdir(parents=True, exist_ok=True)
    found = Targets()
    port = procs.free_port()
    argv = [sys.executable, "-m", "bench.baseline", url, f"{procs.HOST}:{port}"]
    found.running[BASELINE] = stack.enter_context(procs.server(BASELINE, argv, {}, port, log_dir))
    _start_docgate(stack, found, SERVICE, url, secret, log_dir, QUIET)
    if observed:
        metrics = {"DOCGATE_METRICS_LISTEN": f"{procs.HOST}:{procs.free_port()}"}
        _start_docgate(stack, found, OBSERVED, url, secret, log_dir, {**OBSERVED_ENV, **metrics})
    return found


def _start_docgate(
    stack: ExitStack,
    found: Targets,
    name: str,
    url: str,
    secret: str,
    log_dir: Path,
    extra: dict[str, str],
) -> None:
    port = procs.free_port()
    env = {
        "DOCGATE_DATABASE_URL": url,
        "DOCGATE_JWT_SECRET": secret,
        "DOCGATE_LISTEN": f"{procs.HOST}:{port}",
        **extra,
    }
    argv = [procs.docgate_executable(), "serve"]
    try:
        found.running[name] = stack.enter_context(procs.server(name, argv, env, port, log_dir))
    except (RuntimeError, OSError) as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        found.missing[name] = f"not available (did not start: {lines[-1] if lines else error})"


def probe(
    target: str, method: str, sample: tuple[Call, ...], callers: dict[str, Caller]
) -> tuple[list[str], str | None]:
    """Send ``sample`` once; returns the answers' summaries, or why the target cannot be
    measured on ``method``."""
    answers = []
    for call in sample:
        try:
            response = call_once(target, method, call)
        except grpc.RpcError as error:
            code = error.code()
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return [], "not available (UNIMPLEMENTED)"
            return [], f"not available ({code.name}: {error.details()})"
        problem = calls.check(method, call, response, callers)
        if problem is not None:
            return [], f"not measured (wrong answer: {problem})"
        answers.append(calls.describe(method, response))
    return answers, None
