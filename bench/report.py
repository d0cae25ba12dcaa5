"""Console table and JSON file for one bench run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.runner import Comparison, Stats

BASELINE = "baseline"
SERVICE = "docgate"
# --observed: docgate with metrics and JSON access logs on.
OBSERVED = "observed"


def _fmt(value: float, unit: str = "") -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}{unit}"


def _ratio(service: float, baseline: float) -> float:
    return service / baseline if baseline and not math.isnan(service + baseline) else math.nan


def ratios(comparison: Comparison) -> dict[str, float] | None:
    """service / baseline for req/s, p50 and p99 (None when either side is missing)."""
    base, service = comparison.median(BASELINE), comparison.median(SERVICE)
    if base is None or service is None:
        return None
    found = _ratios(service, base)
    observed = comparison.median(OBSERVED)
    if observed is not None:  # --observed: on ÷ baseline, and on ÷ off
        found.update({f"observed_{k}": v for k, v in _ratios(observed, base).items()})
        found.update({f"on_off_{k}": v for k, v in _ratios(observed, service).items()})
    return found


def _ratios(service: Stats, base: Stats) -> dict[str, float]:
    return {
        "rps": _ratio(service.rps, base.rps),
        "p50": _ratio(service.p50_ms, base.p50_ms),
        "p99": _ratio(service.p99_ms, base.p99_ms),
    }


def _row(scenario: str, target: str, stats: Stats | None, note: str = "") -> str:
    if stats is None:
        return f"{scenario:<26}{target:<10}{note}"
    errors = sum(stats.errors.values())
    error_text = f"  errors {stats.errors}" if errors else ""
    return (
        f"{scenario:<26}{target:<10}{_fmt(stats.rps):>10}{_fmt(stats.p50_ms):>10}"
        f"{_fmt(stats.p99_ms):>10}{error_text}"
    )


def table(scenarios: dict[str, Comparison]) -> str:
    lines = [f"{'scenario':<26}{'target':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"]
    for name, comparison in scenarios.items():
        shown = (
            (BASELINE, SERVICE, OBSERVED) if OBSERVED in comparison.rounds else (BASELINE, SERVICE)
        )
        for target in shown:
            note = comparison.unavailable.get(target, "not measured")
            lines.append(_row(name, target, comparison.median(target), note))
        found = ratios(comparison)
        if found is not None:
            for prefix, what in (("", "docgate"), ("observed_", "observed"), ("on_off_", "")):
                if f"{prefix}rps" not in found:
                    continue
                label = f"({what} / baseline)" if what else "(observed / docgate: on ÷ off)"
                lines.append(
                    f"{'':<26}{'ratio':<10}{found[prefix + 'rps']:>9.2f}x"
                    f"{found[prefix + 'p50']:>9.2f}x{found[prefix + 'p99']:>9.2f}x   {label}"
                )
        lines.append("")
    return "\n".join(lines)


def scaling(scenarios: dict[str, Comparison], rpc: str, small: int, large: int) -> dict[str, Any]:
    """Latency at ``large`` rows as a multiple of latency at ``small``, per target."""
    before = scenarios.get(f"{rpc}@{small}")
    after = scenarios.get(f"{rpc}@{large}")
    found: dict[str, Any] = {}
    for target in (BASELINE, SERVICE):
        a = before.median(target) if before else None
        b = after.median(target) if after else None
        if a is not None and b is not None:
            found[target] = {"p50": _ratio(b.p50_ms, a.p50_ms), "p99": _ratio(b.p99_ms, a.p99_ms)}
    return found


def scaling_lines(
    rpc: str, small: int, large: int, found: dict[str, Any], unit: str = "docs"
) -> list[str]:
    lines = []
    for target, values in found.items():
        lines.append(
            f"{rpc} latency at {large:,} {unit} within {values['p50']:.2f}x (p50) / "
            f"{values['p99']:.2f}x (p99) of {small:,} {unit}   [{target}]"
        )
    return lines or [f"{rpc}: no scaling figure (a side was not measured)"]


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
