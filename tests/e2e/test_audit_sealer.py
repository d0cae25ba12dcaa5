"""The audit trail's sealer: entries commit unsealed and are sealed after commit, in the
background, by whichever process gets to them; readers of the chain seal first.

On a database of the module's own (module_database_url), with no session server: each test
decides which sealers run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc.aio
import pytest
from docgate.v1 import audit_pb2, audit_pb2_grpc, roles_pb2, roles_pb2_grpc
from sqlalchemy import text
from sqlalchemy.engine import make_url

from docgate import audit, calls
from docgate.bootstrap import App, build_app
from docgate.db import migrations
from docgate.db.audit import SEAL_BATCH, seal, seal_all
from docgate.principal import SYSTEM
from docgate.repositories.audit import walk
from docgate.repositories.roles import RoleRepository
from docgate.server import start_server
from tests.conftest import settings_for
from tests.e2e.test_cli import _env, _run
from tests.support import make_user, unique

_CREATE_ROLE = "/docgate.v1.RoleService/CreateRole"


def _raw(url: str) -> str:
    return make_url(url).render_as_string(hide_password=False)


@pytest.fixture
async def make_app() -> AsyncIterator[list[App]]:
    """The test's apps (each a stand-in for a docgate process), closed at the end."""
    apps: list[App] = []
    yield apps
    for app in apps:
        await app.close()


def _new(apps: list[App], url: str) -> App:
    app = build_app(settings_for(url), url)
    apps.append(app)
    return app


async def _write(app: App) -> str:
    """One audited write, as an RPC would make it: its request id."""
    rid = uuid.uuid4().hex
    with calls.calling(_CREATE_ROLE, rid):
        async with app.uow.transaction(SYSTEM) as session:
            await RoleRepository(session).create(unique("r"), "")
    return rid


async def _ids(app: App, *rids: str) -> list[int]:
    async with app.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id FROM audit_entries WHERE request_id = ANY(:r) ORDER BY id"),
            {"r": list(rids)},
        )
        return [row.id for row in rows]


async def _sealed_eventually(app: App, *rids: str) -> bool:
    """Whether the entries become sealed (polled: the sealer's own pace decides when)."""
    for _ in range(200):
        ids = await _ids(app, *rids)
        if len(ids) == len(rids) and all(i > 0 for i in ids):
            return True
        await asyncio.sleep(0.05)
    return False


async def _chain(app: App) -> audit.Verdict:
    async with app.engine.connect() as conn:
        entries = [e async for e in walk(conn)]
    assert [e.id for e in entries] == list(range(1, len(entries) + 1))  # dense
    return audit.verify(entries)


async def test_a_committed_entry_is_sealed_in_the_background_without_a_read(
    make_app: list[App], module_database_url: str
) -> None:
    app = _new(make_app, module_database_url)
    assert app.sealer is not None
    rids = [await _write(app) for _ in range(3)]
    assert await _sealed_eventually(app, *rids)
    assert app.sealer.running
    assert app.sealer.sealed >= 1  # this process's sealer, poked by its commits, did it
    verdict = await _chain(app)
    assert verdict.first_bad is None, verdict.why


async def test_an_entry_its_process_never_sealed_is_sealed_by_the_next_one(
    make_app: list[App], module_database_url: str
) -> None:
    crashed = _new(make_app, module_database_url)
    assert crashed.sealer is not None
    await crashed.sealer.close()  # its sealer is gone (as in a process killed after COMMIT)
    rid = await _write(crashed)
    for _ in range(3):  # given time, nobody seals it: it stays pending, not lost
        await asyncio.sleep(0.1)
        (pending,) = await _ids(crashed, rid)
        assert pending < 0
    await crashed.close()

    following = _new(make_app, module_database_url)
    running = await start_server(following, "127.0.0.1:0")  # seals at start-up
    try:
        assert await _sealed_eventually(following, rid)
    finally:
        await running.stop(None)
    verdict = await _chain(following)
    assert verdict.first_bad is None, verdict.why


async def test_concurrent_sealers_never_fork_the_chain(
    make_app: list[App], module_database_url: str
) -> None:
    """Fifty writes from two processes at once, each poking its own sealer, while a reader's
    blocking seal and bare tries of the lock race them: every entry sealed once, ids dense,
    one chain."""
    one, two = _new(make_app, module_database_url), _new(make_app, module_database_url)
    before = (await _chain(one)).count

    async def tries() -> None:
        async with one.engine.connect() as conn:
            for _ in range(20):
                await seal(conn, wait=False, batch=3)
                await asyncio.sleep(0)

    async def blocking() -> None:
        async with two.engine.connect() as conn:
            for _ in range(5):
                await seal_all(conn)

    results = await asyncio.gather(
        *(_write(one if n % 2 else two) for n in range(50)), tries(), blocking()
    )
    rids = [r for r in results if isinstance(r, str)]
    assert await _sealed_eventually(one, *rids)
    verdict = await _chain(one)
    assert verdict.first_bad is None, verdict.why
    assert verdict.count == before + 50


async def test_readers_seal_first_list_verify_and_export(
    make_app: list[App], module_database_url: str
) -> None:
    app = _new(make_app, module_database_url)
    assert app.sealer is not None
    running = await start_server(app, "127.0.0.1:0")
    await app.sealer.close()  # no background sealing: only the readers can seal these
    try:
        admin = await make_user(app, "admin")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            name, rid = unique("r"), uuid.uuid4().hex
            meta = (*admin.metadata, ("x-request-id", rid))
            await roles_pb2_grpc.RoleServiceStub(channel).CreateRole(
                roles_pb2.CreateRoleRequest(name=name), metadata=meta
            )
            (pending,) = await _ids(app, rid)
            assert pending < 0
            page = await audit_pb2_grpc.AuditServiceStub(channel).ListAuditEntries(
                audit_pb2.ListAuditEntriesRequest(resource=f"roles/{name}"),
                metadata=admin.metadata,
            )
        assert [e.request_id for e in page.entries] == [rid]
        assert page.entries[0].id > 0
        assert await _ids(app, rid) == [page.entries[0].id]

        for command in (("verify",), ("export", "--since", "2000-01-01T00:00:00")):
            rid = await _write(app)
            env = _env(module_database_url)
            code, out, err = await _run(env, "audit", *command)
            assert code == 0, err
            (sealed,) = await _ids(app, rid)
            assert sealed > 0
            count = (await _chain(app)).count
            if command[0] == "verify":
                assert out.startswith(f"ok: {count} entries, head ")
            else:
                assert len(out.splitlines()) == count
    finally:
        await running.stop(None)


async def test_a_seal_batch_is_bounded(make_app: list[App], scratch_database_url: str) -> None:
    """More pending than one batch: a seal statement takes one batch, seal_all all of them.
    (Made-up bodies, so on a database of the test's own: this chain does not verify.)"""
    await migrations.upgrade(scratch_database_url)
    app = _new(make_app, scratch_database_url)
    assert app.sealer is not None
    await app.sealer.close()
    async with app.engine.connect() as conn:
        await conn.execute(
            text(
                "INSERT INTO audit_entries (id, time, method, action, resource, body) "
                "SELECT -g, now(), 'm', 'ROLE_CREATED', 'r', 'b'::bytea "
                "FROM generate_series(10000000, 10000000 + :n) g"
            ),
            {"n": SEAL_BATCH + 4},
        )
        assert await seal(conn, wait=False, batch=SEAL_BATCH) == SEAL_BATCH
        assert await seal_all(conn) == 5
        assert await seal(conn, wait=True) == 0
        ids = (await conn.execute(text("SELECT id FROM audit_entries ORDER BY id"))).scalars()
        assert list(ids) == list(range(1, SEAL_BATCH + 6))


async def test_the_trigger_lets_through_only_the_seal(
    make_app: list[App], module_database_url: str
) -> None:
    app = _new(make_app, module_database_url)
    assert app.sealer is not None
    await app.sealer.close()
    rid = await _write(app)
    (placeholder,) = await _ids(app, rid)
    conn = await asyncpg.connect(_raw(module_database_url))
    try:
        refused = (
            f"UPDATE audit_entries SET resource = 'x' WHERE id = {placeholder}",
            f"DELETE FROM audit_entries WHERE id = {placeholder}",
            # a seal with a hash its body does not give
            f"UPDATE audit_entries SET id = 999999, prev_hash = sha256(''::bytea), "
            f"hash = sha256('x'::bytea), body = NULL WHERE id = {placeholder}",
            # a seal that also edits the entry
            f"UPDATE audit_entries SET id = 999999, prev_hash = sha256(''::bytea), "
            f"hash = sha256(sha256(''::bytea) || int8send(999999) || body), body = NULL, "
            f"resource = 'x' WHERE id = {placeholder}",
            "TRUNCATE audit_entries",
        )
        for sql in refused:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(sql)
        assert await conn.fetchval("SELECT audit_seal_pending(10, true)") >= 1
        (sealed,) = await _ids(app, rid)
        assert sealed > 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(f"UPDATE audit_entries SET resource = 'x' WHERE id = {sealed}")
    finally:
        await conn.close()
    verdict = await _chain(app)
    assert verdict.first_bad is None, verdict.why
