"""The audit registry: every served method is classified, every mutating one has an action,
and the three spellings of the action set (Python, proto, migration) agree."""

from __future__ import annotations

import importlib.util
import inspect
from datetime import UTC, datetime
from pathlib import Path

from docgate.v1 import audit_pb2

from docgate import audit, policy
from docgate.audit import GENESIS, Action, Entry, chain_hash, verify
from docgate.edge.registry import method_paths
from tests.support import served_bindings

ROOT = Path(__file__).resolve().parents[2]


def test_every_served_method_is_a_write_or_a_read() -> None:
    served = method_paths(served_bindings())
    assert audit.unclassified(served) == []
    assert set(served) >= audit.RPC_WRITES
    assert set(audit.READS) <= set(served)


def test_every_write_is_a_method_the_policy_knows() -> None:
    assert set(policy.RPC_ACCESS) >= audit.RPC_WRITES


def test_a_servicer_method_that_opens_a_transaction_is_a_write() -> None:
    """Read from the servicers themselves, not from a list in this test: a new RPC whose
    handler opens a write transaction must be in WRITES."""
    for binding in served_bindings():
        for path in binding.method_paths():
            handler = getattr(binding.servicer, path.rsplit("/", 1)[1])
            if ".transaction(" in inspect.getsource(handler):
                assert path in audit.WRITES, f"{path} writes but has no audit action"


def test_the_actions_are_the_same_in_python_the_api_and_the_schema() -> None:
    python = [a.value for a in Action]
    api = [n.removeprefix("AUDIT_ACTION_") for n in audit_pb2.AuditAction.keys()][1:]  # noqa: SIM118
    spec = importlib.util.spec_from_file_location(
        "m0007", ROOT / "alembic" / "versions" / "20261201_0007_audit.py"
    )
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert python == api == list(migration.ACTIONS)


def test_every_action_but_the_bypass_belongs_to_a_write() -> None:
    used = {a for actions in audit.WRITES.values() for a in actions}
    assert set(Action) - used == {Action.ADMIN_BYPASS_READ}


def _entry(n: int, prev: bytes, resource: str = "roles/r") -> Entry:
    e = Entry(n, datetime(2026, 12, 1, tzinfo=UTC), None, "rid", "m", Action.ROLE_CREATED,
              resource, {"description": {"old": None, "new": "x"}}, prev)  # fmt: skip
    return Entry(**{**e.__dict__, "hash": chain_hash(prev, e)})


def test_verify_walks_a_good_chain_and_names_the_first_bad_entry() -> None:
    first = _entry(1, GENESIS)
    second = _entry(2, first.hash)
    third = _entry(3, second.hash)
    good = verify([first, second, third])
    assert (good.count, good.head, good.first_bad) == (3, third.hash, None)
    edited = Entry(**{**second.__dict__, "resource": "roles/other"})
    bad = verify([first, edited, third])
    assert bad.first_bad == edited and bad.count == 1
    assert "content" in bad.why
    relinked = _entry(3, GENESIS)
    assert verify([first, second, relinked]).first_bad == relinked


def test_secret_fields_are_named_without_values() -> None:
    assert audit.changed("content", "a", "b") == {}
    assert audit.changed("email", "a@x", "b@x") == {}
    assert audit.changed("title", "a", "b") == {"old": "a", "new": "b"}


def test_the_body_is_its_untimed_head_then_the_time() -> None:
    """What the entry's INSERT appends in SQL after body_until_time (docgate.db.audit)."""
    entry = _entry(1, GENESIS, resource='roles/"time":"x"}')
    time = audit.encoded_time(entry.time)
    assert time == "2026-12-01T00:00:00.000000+00:00"
    assert audit.body_until_time(entry) + f'"{time}"}}'.encode() == audit.body(entry)
