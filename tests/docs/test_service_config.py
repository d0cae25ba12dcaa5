"""docs/service-config.json: valid JSON naming only served methods, a timeout for every
docgate RPC, and retries (UNAVAILABLE only) on exactly the idempotent ones: the reads, and the
writes whose request carries a request_id (a retry replays the first result)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import served_bindings

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "service-config.json"
READS = ("Get", "List", "BatchGet", "Search", "Check", "Explain")


def _methods() -> dict[tuple[str, str], Any]:
    return {
        (binding.name, method.name): method
        for binding in served_bindings()
        for method in binding.descriptor.methods
    }


def _idempotent(method: Any) -> bool:
    return method.name.startswith(READS) or "request_id" in method.input_type.fields_by_name


def _named(entry: dict[str, Any]) -> list[tuple[str, str]]:
    return [(name["service"], name["method"]) for name in entry["name"]]


def test_it_names_only_served_methods_each_once_with_a_timeout() -> None:
    config = json.loads(CONFIG.read_text())
    served = _methods()
    named = [pair for entry in config["methodConfig"] for pair in _named(entry)]
    assert len(named) == len(set(named)), "a method in two methodConfig entries"
    assert set(named) <= set(served), set(named) - set(served)
    assert set(named) == set(served), "every docgate RPC has a timeout"
    for entry in config["methodConfig"]:
        seconds = entry["timeout"]
        assert seconds.endswith("s")
        assert 0 < float(seconds[:-1]) <= 30


def test_retries_are_for_exactly_the_idempotent_rpcs_and_only_on_unavailable() -> None:
    config = json.loads(CONFIG.read_text())
    served = _methods()
    retried: set[tuple[str, str]] = set()
    for entry in config["methodConfig"]:
        policy = entry.get("retryPolicy")
        if policy is None:
            continue
        assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
        assert 2 <= policy["maxAttempts"] <= 5
        retried |= set(_named(entry))
    idempotent = {pair for pair, method in served.items() if _idempotent(method)}
    assert retried == idempotent
    # The rule sees the three creates that take a request_id, and no other write.
    writes = {name for (_, name) in idempotent if not name.startswith(READS)}
    assert writes == {"CreateDocument", "CreateProject", "CreateDocumentFromTemplate"}
    assert "retryThrottling" in config
