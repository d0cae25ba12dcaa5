"""``make bench BENCH_ARGS=--shapes``: every read shape, every caller kind, at two table sizes.

Seeds the bench database (bench.database) at the smaller size, measures every shape for each
caller kind (free, paid, admin, a custom role) with one caller sending one call at a time
through a real docgate server, grows the table in place, measures again, and prints p50/p99 at
both sizes and the growth factor (p50 large / p50 small). Exits non-zero when a shape grows
more than MAX_GROWTH: a query that reads more rows as the table grows shows up here before a
user finds it. See bench/README.md ("Shapes").
"""

from __future__ import annotations

import asyncio
import atexit
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import grpc.aio
from docgate.v1 import documents_pb2 as pb
from docgate.v1 import documents_pb2_grpc

from bench import calls, database, procs
from bench.database import Caller
from docgate.db.embedded import ensure_database, start_embedded
from docgate.db.migrations import upgrade

MAX_GROWTH = 3.0
# Per shape and caller: ROUNDS batches of BATCH calls at each size, alternately (after one
# warm-up batch each).
ROUNDS = 6
BATCH = 3
# A shape past MAX_GROWTH is measured again up to this many times (the box may have been busy
# for one side only); the attempt with the lowest growth counts, every attempt is kept.
RETRIES = 2
PAGE = 50
CUSTOM_ROLE = "bench_editor"
# A title word of exactly one document at every size (titles are 'Document <n>').
RARE = "4321"
DEADLINE_S = 30.0


@dataclass
class Kind:
    """One caller kind: its caller, the role its owner_role filter names, ids it may read."""

    name: str
    caller: Caller
    role: str
    metadata: tuple[tuple[str, str], ...] = ()
    targets: list[str] = field(default_factory=list)


@dataclass
class World:
    other_owner: str  # a bench owner none of the callers is


Request = Callable[[Kind, World, random.Random], tuple[str, Any]]


def _list(**fields: Any) -> Request:
    return lambda kind, world, rng: ("ListDocuments", pb.ListDocumentsRequest(**fields))


def _search(query: str) -> Request:
    return lambda kind, world, rng: ("SearchDocuments", pb.SearchDocumentsRequest(query=query))


def _get(kind: Kind, world: World, rng: random.Random) -> tuple[str, Any]:
    return "GetDocument", pb.GetDocumentRequest(id=rng.choice(kind.targets))


def _batch(kind: Kind, world: World, rng: random.Random) -> tuple[str, Any]:
    return "BatchGetDocuments", pb.BatchGetDocumentsRequest(ids=rng.sample(kind.targets, 100))


def _mine(**fields: Any) -> Request:
    return lambda kind, world, rng: (
        "ListDocuments",
        pb.ListDocumentsRequest(owner_id=kind.caller.user_id, **fields),
    )


def _other(**fields: Any) -> Request:
    return lambda kind, world, rng: (
        "ListDocuments",
        pb.ListDocumentsRequest(owner_id=world.other_owner, **fields),
    )


def _role(role: str | None = None, **fields: Any) -> Request:
    return lambda kind, world, rng: (
        "ListDocuments",
        pb.ListDocumentsRequest(owner_role=role or kind.role, **fields),
    )


def _project(kind: Kind, world: World, rng: random.Random) -> tuple[str, Any]:
    return "ListDocuments", pb.ListDocumentsRequest(project_id=str(uuid.uuid4()))


# name → (request, pages deep: the call measured is the one with the page token of page N,
# admins only)
SHAPES: dict[str, tuple[Request, int, bool]] = {
    "Get": (_get, 1, False),
    "BatchGet 100": (_batch, 1, False),
    "List first page": (_list(), 1, False),
    "List page 10": (_list(), 10, False),
    "List create_time asc": (_list(order_by="create_time"), 1, False),
    "List update_time desc": (_list(order_by="update_time desc"), 1, False),
    "List title": (_list(order_by="title"), 1, False),
    "List title page 10": (_list(order_by="title"), 10, False),
    "List total_size": (_list(include_total_size=True), 1, False),
    "List is_public=true": (_list(is_public=True), 1, False),
    "List is_public=false": (_list(is_public=False), 1, False),
    "List is_public=false total_size": (_list(is_public=False, include_total_size=True), 1, False),
    "List requires_paid=true": (_list(requires_paid_access=True), 1, False),
    "List requires_paid=false": (_list(requires_paid_access=False), 1, False),
    "List private+paid": (_list(is_public=False, requires_paid_access=True), 1, False),
    "List owner=self": (_mine(), 1, False),
    "List owner=self title": (_mine(order_by="title"), 1, False),
    "List owner=self update_time total": (
        _mine(order_by="update_time desc", include_total_size=True),
        1,
        False,
    ),
    "List owner=other": (_other(), 1, False),
    "List owner=other public title": (_other(is_public=True, order_by="title"), 1, False),
    "List owner_role=own": (_role(), 1, False),
    "List owner_role=own total_size": (_role(include_total_size=True), 1, False),
    "List owner_role=own page 10": (_role(), 10, False),
    "List owner_role=own private": (_role(is_public=False), 1, False),
    "List project_id": (_project, 1, False),
    "List owner_role=custom (admin)": (_role(CUSTOM_ROLE), 1, True),
    "List owner_role=paid total (admin)": (_role("paid_user", include_total_size=True), 1, True),
    "List show_deleted (admin)": (_list(show_deleted=True), 1, True),
    "List show_deleted total (admin)": (_list(show_deleted=True, include_total_size=True), 1, True),
    "Search common word": (_search("lorem"), 1, False),
    "Search two common words": (_search("lorem ipsum"), 1, False),
    "Search common page 10": (_search("lorem"), 10, False),
    "Search phrase": (_search('"ipsum dolor"'), 1, False),
    "Search common -rare": (_search(f"lorem -{RARE}"), 1, False),
    "Search title word": (_search("document"), 1, False),
    "Search rare word": (_search(RARE), 1, False),
    "Search rare phrase": (_search(f'"document {RARE}"'), 1, False),
    "Search rare OR common": (_search(f"{RARE} or lorem"), 1, False),
}


def _log(message: str) -> None:
    print(f"[shapes {time.strftime('%H:%M:%S')}] {message}", flush=True)


async def _custom_caller(conn: asyncpg.Connection) -> Caller:
    """A user whose only role is a custom one (the free rule applies to them)."""
    await conn.execute("INSERT INTO roles (name) VALUES ($1) ON CONFLICT DO NOTHING", CUSTOM_ROLE)
    row = await conn.fetchrow(
        "INSERT INTO users (username, email) VALUES ('bench_custom', 'bench_custom@bench.invalid')"
        " RETURNING id::text, username"
    )
    await conn.execute(
        "INSERT INTO user_roles (user_id, role_id) SELECT $1::uuid, id FROM roles WHERE name = $2",
        row["id"],
        CUSTOM_ROLE,
    )
    return Caller(row["id"], row["username"], CUSTOM_ROLE)


async def _database(server_url: str, name: str) -> str:
    url = await ensure_database(server_url, name)
    await upgrade(url)
    return url


# Each caller (and the "other" owner) also takes over the documents of this many more owners
# so that at the smaller size too their own documents fill a page (a shape whose page is short
# at 10k and full at 1M would show the page's growth, not the query's).
SHARE = 49
_TAKE_OVER = """
UPDATE documents SET owner_id = $1::uuid
WHERE owner_id IN (SELECT id FROM users WHERE username = ANY($2::text[]))
"""


async def _concentrate(conn: asyncpg.Connection, owners: list[str]) -> None:
    for n, owner in enumerate(owners):
        names = [f"bench_owner_{100 + n * SHARE + i}" for i in range(SHARE)]
        await conn.execute(_TAKE_OVER, owner, names, timeout=900)
    await conn.execute("VACUUM ANALYZE documents", timeout=900)


async def _prepare(url: str, size: int) -> tuple[list[Kind], World, float]:
    conn = await asyncpg.connect(url)
    try:
        callers = await database.seed_users(conn)
        custom = await _custom_caller(conn)
        other = await conn.fetchval("SELECT id::text FROM users WHERE username = 'bench_owner_7'")
        seconds = await database.seed_documents(conn, size)
        by_role = {c.role: c for c in reversed(callers)}  # the first caller of each role
        kinds = [
            Kind("free", by_role["free_user"], "free_user"),
            Kind("paid", by_role["paid_user"], "paid_user"),
            Kind("admin", by_role["admin"], "admin"),
            Kind("custom", custom, CUSTOM_ROLE),
        ]
        await _concentrate(conn, [other, *(kind.caller.user_id for kind in kinds)])
        for kind in kinds:
            kind.targets = await database.visible_targets(conn, kind.caller)
    finally:
        await conn.close()
    return kinds, World(other_owner=other), seconds


@dataclass
class Side:
    """One database size with its own docgate server."""

    size: int
    target: str
    kinds: list[Kind]
    world: World


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _token_for(stub: Any, method: str, request: Any, md: Any, pages: int) -> str:
    """The page token of page ``pages`` (following the first pages' tokens)."""
    token = ""
    for _ in range(pages - 1):
        request.page_token = token
        reply = await getattr(stub, method)(request, metadata=md, timeout=DEADLINE_S)
        token = reply.next_page_token
        if not token:
            break
    return token


async def _batch_of(
    stub: Any, side: Side, kind: Kind, shape: str, rng: random.Random, count: int
) -> list[float]:
    build, pages, _ = SHAPES[shape]
    method, request = build(kind, side.world, rng)
    if pages > 1:
        request.page_token = await _token_for(stub, method, request, kind.metadata, pages)
    samples = []
    for _ in range(count):
        if method in ("GetDocument", "BatchGetDocuments"):
            method, request = build(kind, side.world, rng)
        started = time.perf_counter()
        await getattr(stub, method)(request, metadata=kind.metadata, timeout=DEADLINE_S)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _attempt(
    sides: list[Side], stubs: list[Any], shape: str, index: int, rng: random.Random
) -> list[dict[str, float]]:
    """One measurement of ``shape`` for caller kind ``index``: {"p50", "p99"} per side."""
    samples: list[list[float]] = [[] for _ in sides]
    for batch in range(ROUNDS + 1):
        for n, (side, stub) in enumerate(zip(sides, stubs, strict=True)):
            got = await _batch_of(stub, side, side.kinds[index], shape, rng, BATCH)
            if batch:  # the first batch warms up
                samples[n].extend(got)
    return [{"p50": statistics.median(s), "p99": _percentile(s, 0.99)} for s in samples]


async def _measure(sides: list[Side]) -> dict[int, dict[str, dict[str, Any]]]:
    """{size: {shape: {kind: {"p50": ms, "p99": ms, "attempts": n}}}}, the sizes measured
    alternately, a short batch at a time, so a change in the box's load falls on both alike."""
    results: dict[int, dict[str, dict[str, Any]]] = {side.size: {} for side in sides}
    rng = random.Random(7)
    channels = [grpc.aio.insecure_channel(side.target) for side in sides]
    stubs = [documents_pb2_grpc.DocumentServiceStub(channel) for channel in channels]
    try:
        for shape, (_, _, admin_only) in SHAPES.items():
            for index, name in enumerate(kind.name for kind in sides[0].kinds):
                if admin_only and name != "admin":
                    continue
                attempts = [await _attempt(sides, stubs, shape, index, rng)]
                while _growth(attempts[-1]) > MAX_GROWTH and len(attempts) <= RETRIES:
                    attempts.append(await _attempt(sides, stubs, shape, index, rng))
                best = min(attempts, key=_growth)
                for side, found in zip(sides, best, strict=True):
                    every = [attempt[sides.index(side)]["p50"] for attempt in attempts]
                    results[side.size].setdefault(shape, {})[name] = {**found, "p50s": every}
    finally:
        for channel in channels:
            await channel.close()
    return results


def _growth(attempt: list[dict[str, float]]) -> float:
    return attempt[-1]["p50"] / attempt[0]["p50"]


def _table(
    sizes: tuple[int, int], found: dict[int, dict[str, dict[str, Any]]]
) -> tuple[list[str], list[str]]:
    """The markdown table and the shapes that grew more than MAX_GROWTH."""
    small, large = sizes
    head = (
        f"| shape | caller | p50 @{small:,} | p99 @{small:,} | p50 @{large:,} | p99 @{large:,} "
        "| growth |"
    )
    lines = [head, "|---|---|---:|---:|---:|---:|---:|"]
    over: list[str] = []
    for shape, per_kind in found[small].items():
        for kind, low in per_kind.items():
            high = found[large][shape][kind]
            growth = high["p50"] / low["p50"]
            mark = " FAIL" if growth > MAX_GROWTH else ""
            lines.append(
                f"| {shape} | {kind} | {low['p50']:.1f} | {low['p99']:.1f} | "
                f"{high['p50']:.1f} | {high['p99']:.1f} | x{growth:.2f}{mark} |"
            )
            if growth > MAX_GROWTH:
                over.append(f"{shape} ({kind}) x{growth:.2f}")
    return lines, over


def run(sizes: tuple[int, ...], results_dir: Path) -> int:
    """Measure every shape at the smallest and the largest of ``sizes``; 1 when one grew more
    than MAX_GROWTH, else 0."""
    small, large = min(sizes), max(sizes)
    work = Path(tempfile.mkdtemp(prefix="docgate-shapes-"))
    # Registered before the database starts, so it runs after the database's own cleanup.
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    started = time.strftime("%Y%m%d-%H%M%S")
    _log(f"starting embedded PostgreSQL in {work}")
    server_url = start_embedded(work, delete_on_exit=True)
    secret = database.new_secret()
    log_dir = results_dir / f"logs-shapes-{started}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        sides = []
        for size in (small, large):
            url = asyncio.run(_database(server_url, f"docgate_shapes_{size}"))
            _log(f"seeding {size:,} documents")
            kinds, world, seconds = asyncio.run(_prepare(url, size))
            _log(f"{size:,} documents ready ({seconds:.1f}s)")
            for kind in kinds:
                kind.metadata = calls.metadata(kind.caller, secret)
            port = procs.free_port()
            env = {
                "DOCGATE_DATABASE_URL": url,
                "DOCGATE_JWT_SECRET": secret,
                "DOCGATE_LISTEN": f"{procs.HOST}:{port}",
            }
            argv = [procs.docgate_executable(), "serve"]
            target = stack.enter_context(procs.server(f"docgate-{size}", argv, env, port, log_dir))
            sides.append(Side(size, target, kinds, world))
        _log(f"measuring {len(SHAPES)} shapes, {small:,} and {large:,} alternately")
        found = asyncio.run(_measure(sides))
    lines, over = _table((small, large), found)
    print("\n" + "\n".join(lines))
    path = results_dir / f"shapes-{started}.json"
    path.write_text(json.dumps({str(k): v for k, v in found.items()}, indent=1))
    print(f"\nresults: {path}")
    print(
        f"\nmilliseconds per call, p50 and p99 of {ROUNDS * BATCH} sequential calls per size (one "
        "caller, one call at a time, the two sizes alternately, each its own docgate server; a "
        f"shape past x{MAX_GROWTH:g} measured again up to {RETRIES} times, the lowest growth "
        "kept)"
    )
    if over:
        print(f"\nFAIL: grew more than x{MAX_GROWTH:g}: " + "; ".join(over), file=sys.stderr)
        return 1
    print(f"\nevery shape within x{MAX_GROWTH:g}")
    return 0
