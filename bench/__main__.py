"""``python -m bench`` (``make bench``): docgate against its raw baseline; see bench/README.md."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from bench.h2load import H2loadMissing, executable
from bench.main import Options, run
from bench.runner import LoadShape

RESULTS = Path(__file__).resolve().parent / "results"

FULL = LoadShape(
    processes=2, concurrency=16, warmup_s=1.0, duration_s=5.0, rounds=5, initial_warmup_s=3.0
)
QUICK = LoadShape(
    processes=2, concurrency=16, warmup_s=0.5, duration_s=2.5, rounds=2, initial_warmup_s=1.5
)
FULL_DOCS = (10_000, 1_000_000)
QUICK_DOCS = (10_000, 100_000)
# Projects with 10 feedback each: 100k projects are a million feedback rows (~15 s to seed).
FULL_PROJECTS = (10_000, 100_000)
QUICK_PROJECTS = (10_000, 100_000)


def _counts(text: str) -> tuple[int, ...]:
    try:
        return tuple(sorted({int(part.replace("_", "")) for part in text.split(",")}))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a list of counts: {text!r}") from error


def _docs(text: str) -> tuple[int, ...]:
    sizes = _counts(text)
    if not sizes or sizes[0] < 1000:
        raise argparse.ArgumentTypeError("every size must be at least 1000 documents")
    return sizes


def _projects(text: str) -> tuple[int, ...]:
    """Project counts; 0 alone skips the project scenarios."""
    sizes = _counts(text)
    if sizes == (0,):
        return ()
    if not sizes or sizes[0] < 1000:
        raise argparse.ArgumentTypeError("every size must be at least 1000 projects (or 0)")
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="short rounds, 10k and 100k docs and projects"
    )
    parser.add_argument("--docs", type=_docs, help="document counts, e.g. 10000,1000000")
    parser.add_argument(
        "--projects", type=_projects, help="project counts, e.g. 10000,100000 (0: none)"
    )
    parser.add_argument("--rounds", type=int, help="alternating rounds per scenario")
    parser.add_argument("--duration", type=float, help="measured seconds per round")
    parser.add_argument("--concurrency", type=int, help="calls in flight per load process")
    parser.add_argument("--processes", type=int, help="load generator processes")
    parser.add_argument("--max-seconds", type=int, help="abort the run after this long")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where JSON goes")
    parser.add_argument(
        "--observed",
        action="store_true",
        help="also measure docgate with metrics and JSON access logs on ('observed')",
    )
    parser.add_argument(
        "--h2load",
        action="store_true",
        help="load from h2load -c 4 -m 16 (C client, bench/h2load.py) instead of Python",
    )
    parser.add_argument(
        "--shapes",
        action="store_true",
        help="every read shape per caller kind at the smallest and largest --docs "
        "(default 10k and 1M); exits 1 when one grows more than 3x (bench/shapes.py)",
    )
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="direct vs DOCGATE_DATABASE_POOLER=transaction vs through a local PgBouncer, "
        "at the smallest --docs (default 10k); exits 2 without pgbouncer (bench/pgbouncer.py)",
    )
    return parser


def options(args: argparse.Namespace) -> Options:
    base = QUICK if args.quick else FULL
    shape = LoadShape(
        processes=args.processes or base.processes,
        concurrency=args.concurrency or base.concurrency,
        warmup_s=base.warmup_s,
        duration_s=args.duration or base.duration_s,
        rounds=args.rounds or base.rounds,
        initial_warmup_s=base.initial_warmup_s,
    )
    docs = args.docs or (QUICK_DOCS if args.quick else FULL_DOCS)
    projects = args.projects
    if projects is None:
        projects = QUICK_PROJECTS if args.quick else FULL_PROJECTS
    return Options(
        docs=docs,
        projects=projects,
        shape=shape,
        results_dir=args.results,
        quick=args.quick,
        observed=args.observed,
        h2load=args.h2load,
    )


def _abort(signum: int, frame: FrameType | None) -> None:
    # Unwind normally so servers, load processes and the database are stopped on the way out.
    raise SystemExit(f"bench: stopped by signal {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.h2load:
        try:
            executable()
        except H2loadMissing as missing:
            print(f"bench: {missing}", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _abort)
    signal.signal(signal.SIGALRM, _abort)
    signal.alarm(args.max_seconds or (420 if args.quick else 1500))
    try:
        if args.shapes:
            from bench import shapes

            results = args.results
            results.mkdir(parents=True, exist_ok=True)
            return shapes.run(args.docs or FULL_DOCS, results)
        if args.pgbouncer:
            from bench import pgbouncer

            chosen = options(args)
            return pgbouncer.run(chosen.docs[0], chosen.shape, args.results)
        run(options(args))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
