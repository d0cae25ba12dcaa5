"""`docgate audit verify` and `docgate audit export` as a user runs them, on a database of their
own; an entry edited in SQL (its trigger disabled, as the superuser) is named by verify."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import pairwise

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from docgate import audit, calls
from docgate.bootstrap import App
from docgate.principal import SYSTEM
from docgate.repositories.roles import RoleRepository
from tests.e2e.test_cli import _env, _run
from tests.support import unique


def _raw(url: str) -> str:
    return make_url(url).render_as_string(hide_password=False)


async def test_verify_export_and_a_tampered_entry(module_database_url: str) -> None:
    env = _env(module_database_url)
    names = [unique() for _ in range(3)]
    for name in names:  # the CLI's own writes are audited too
        code, _, err = await _run(env, "users", "create", name, "--email", f"{name}@x.io")
        assert code == 0, err
    code, out, err = await _run(env, "audit", "verify")
    assert code == 0, err
    assert out.startswith("ok: 3 entries, head ")

    code, out, err = await _run(env, "audit", "export", "--since", "2000-01-01T00:00:00")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(e["id"], e["action"], e["method"]) for e in lines] == [
        (n, "USER_CREATED", "docgate users create") for n in (1, 2, 3)
    ]
    assert lines[0]["prev_hash"] == audit.GENESIS.hex()
    assert all(b["prev_hash"] == a["hash"] for a, b in pairwise(lines))
    assert "x.io" not in out  # emails are named, never shown
    future = datetime(2999, 1, 1, tzinfo=UTC).isoformat()
    assert (await _run(env, "audit", "export", "--since", future))[1] == ""

    conn = await asyncpg.connect(_raw(module_database_url))
    try:
        await conn.execute("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_no_change")
        await conn.execute("UPDATE audit_entries SET resource = 'users/someone-else' WHERE id = 2")
        await conn.execute("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_no_change")
    finally:
        await conn.close()
    code, out, err = await _run(env, "audit", "verify")
    assert code == 1
    assert "audit entry 2 (USER_CREATED users/someone-else) does not verify" in err
    assert "the 1 entries before it do" in err


async def test_a_read_that_opens_a_write_transaction_is_refused(app: App) -> None:
    """The run-time half of the registry: a method classified as a read cannot write."""
    with (
        calls.calling("/docgate.v1.RoleService/GetRole", "r" + unique()),
        pytest.raises(audit.UnauditedWriteError),
    ):
        async with app.uow.transaction(SYSTEM) as session:
            await RoleRepository(session).create(unique("r"), "")
