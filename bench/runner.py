"""Fair alternation: the same load, baseline then service, a few rounds; medians per target."""

from __future__ import annotations

import statistics
import time
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from bench.loadgen import Call, LoadResult, LoadSpec, run_load

T = TypeVar("T")

# Give every worker process time to receive its spec before the common start instant.
_START_DELAY_S = 0.5


@dataclass(frozen=True)
class LoadShape:
    processes: int
    concurrency: int
    warmup_s: float
    duration_s: float
    rounds: int
    # Unmeasured load on each target before its first round.
    initial_warmup_s: float


@dataclass
class Stats:
    rps: float
    p50_ms: float
    p99_ms: float
    calls: int
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class Comparison:
    """One RPC in one scenario: per-target rounds, medians and service/baseline ratios."""

    rounds: dict[str, list[Stats]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def median(self, target: str) -> Stats | None:
        runs = self.rounds.get(target)
        if not runs:
            return None
        errors: Counter[str] = Counter()
        for run in runs:
            errors.update(run.errors)
        return Stats(
            rps=statistics.median(r.rps for r in runs),
            p50_ms=statistics.median(r.p50_ms for r in runs),
            p99_ms=statistics.median(r.p99_ms for r in runs),
            calls=sum(r.calls for r in runs),
            errors=dict(errors),
        )

    def to_json(self) -> dict[str, Any]:
        medians = {name: self.median(name) for name in self.rounds}
        return {
            "rounds": {n: [asdict(s) for s in runs] for n, runs in self.rounds.items()},
            "median": {n: asdict(s) for n, s in medians.items() if s is not None},
            "unavailable": self.unavailable,
        }


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summarize(results: Sequence[LoadResult]) -> Stats:
    latencies = array("d")
    errors: Counter[str] = Counter()
    for result in results:
        latencies.frombytes(result.latencies)
        errors.update(result.errors)
    ordered = sorted(latencies)
    duration = max(r.duration_s for r in results)
    return Stats(
        rps=len(ordered) / duration,
        p50_ms=percentile(ordered, 0.50) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        calls=len(ordered),
        errors=dict(errors),
    )


class Runner:
    def __init__(self, executor: ProcessPoolExecutor, shape: LoadShape) -> None:
        self._executor = executor
        self.shape = shape

    def measure(
        self, target: str, method: str, calls: tuple[Call, ...], warmup_s: float, duration_s: float
    ) -> Stats:
        start_at = time.time() + _START_DELAY_S
        step = max(1, len(calls) // self.shape.processes)
        specs = [
            LoadSpec(
                target=target,
                method=method,
                calls=calls,
                concurrency=self.shape.concurrency,
                warmup_s=warmup_s,
                duration_s=duration_s,
                start_at=start_at,
                offset=i * step,
            )
            for i in range(self.shape.processes)
        ]
        futures = [self._executor.submit(run_load, spec) for spec in specs]
        limit = _START_DELAY_S + warmup_s + duration_s + 60
        return summarize([future.result(timeout=limit) for future in futures])

    def compare(
        self,
        targets: Mapping[str, str],
        method: str,
        calls: tuple[Call, ...],
        *,
        rotate: bool = False,
    ) -> Comparison:
        """Warm each target up, then alternate rounds (`round_order`)."""
        shape = self.shape
        comparison = Comparison(rounds={name: [] for name in targets})
        for target in targets.values():
            self.measure(target, method, calls, 0.0, shape.initial_warmup_s)
        order = list(targets.items())
        for round_ in range(shape.rounds):
            for name, target in round_order(order, round_, rotate=rotate):
                stats = self.measure(target, method, calls, shape.warmup_s, shape.duration_s)
                comparison.rounds[name].append(stats)
        return comparison


def round_order(order: Sequence[T], round_: int, *, rotate: bool = False) -> list[T]:
    """The targets in round ``round_``: in the given order in even rounds and reversed in odd
    ones, so that each two targets are measured in both orders equally often over an even
    number of rounds (a target measured always right after another would carry whatever that
    one leaves behind: PostgreSQL's caches, the box's other load). With ``rotate``, round i
    starts at the i-th target instead (each target first, second, … equally often)."""
    if rotate:
        start = round_ % len(order)
        return [*order[start:], *order[:start]]
    return list(order) if round_ % 2 == 0 else list(reversed(order))
