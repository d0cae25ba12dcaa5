"""Races through the real server: many AddFeedback calls at once keep the count and average
exact; state changes from one etag serialise (one wins, the others ABORTED); and a state change
never lets feedback land on a project that is no longer ACTIVE."""

from __future__ import annotations

import asyncio
import math
import random
import statistics
from collections.abc import Awaitable
from typing import Any

import asyncpg
import grpc
import grpc.aio
import pytest
from docgate.v1 import projects_pb2 as pb
from sqlalchemy.engine import make_url

from docgate.bootstrap import App
from tests.conformance.projects_support import (
    ACTIVE,
    COMPLETED,
    DRAFT,
    Stub,
    add_feedback,
    all_feedback,
    change,
    get_project,
    project_in,
)
from tests.support import count_rows, error_info, make_user

CODE = grpc.StatusCode


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


async def _outcomes(calls: list[Awaitable[Any]]) -> list[Any]:
    return list(await asyncio.gather(*calls, return_exceptions=True))


def _is_error(outcome: object, code: grpc.StatusCode, reason: str) -> bool:
    if not isinstance(outcome, grpc.aio.AioRpcError) or outcome.code() != code:
        return False
    info = error_info(outcome)
    return info is not None and info.reason == reason


async def test_fifty_concurrent_feedback_keep_count_and_average_exact(app: App, stub: Stub) -> None:
    owner = await make_user(app)
    authors = [await make_user(app) for _ in range(5)]
    project = await project_in(stub, owner, ACTIVE)
    rng = random.Random(10)
    scores: list[float | None] = [
        None if i % 4 == 0 else rng.choice([1.0, 5.0, round(rng.uniform(1, 5), 3)])
        for i in range(50)
    ]
    outcomes = await _outcomes(
        [add_feedback(stub, authors[i % 5], project.id, score) for i, score in enumerate(scores)]
    )
    assert all(isinstance(o, pb.Feedback) for o in outcomes), outcomes
    assert sorted(o.score for o in outcomes if o.HasField("score")) == sorted(
        s for s in scores if s is not None
    )
    got = await get_project(stub, owner, project.id)
    scored = [s for s in scores if s is not None]
    assert got.feedback_count == 50
    # PostgreSQL sums the scores in its own order, Python's fmean in another: the averages may
    # differ in the last bits, never more.
    assert math.isclose(got.average_score, statistics.fmean(scored), rel_tol=1e-12)
    assert len(await all_feedback(stub, owner, project.id, size=7)) == 50
    sql = "SELECT count(*) FROM feedback WHERE project_id = :id AND score IS NULL"
    assert await count_rows(app, sql, id=project.id) == scores.count(None)


@pytest.mark.parametrize(
    ("start", "methods"),
    [
        (DRAFT, ["ActivateProject", "ActivateProject"]),
        (DRAFT, ["ActivateProject", "ArchiveProject"]),
        (ACTIVE, ["CompleteProject", "ArchiveProject"]),
        (ACTIVE, ["ArchiveProject"] * 4),
    ],
)
async def test_state_changes_from_one_etag_one_wins(
    app: App, stub: Stub, start: int, methods: list[str]
) -> None:
    owner = await make_user(app)
    for _ in range(5):
        project = await project_in(stub, owner, start)
        outcomes = await _outcomes(
            [change(stub, owner, method, project.id, project.etag) for method in methods]
        )
        winners = [o for o in outcomes if isinstance(o, pb.Project)]
        losers = [o for o in outcomes if not isinstance(o, pb.Project)]
        assert len(winners) == 1, outcomes
        assert all(_is_error(o, CODE.ABORTED, "ETAG_MISMATCH") for o in losers), losers
        assert await get_project(stub, owner, project.id) == winners[0]


async def test_racing_the_same_change_without_an_etag_moves_once(app: App, stub: Stub) -> None:
    owner = await make_user(app)
    project = await project_in(stub, owner, DRAFT)
    outcomes = await _outcomes(
        [change(stub, owner, "ActivateProject", project.id) for _ in range(4)]
    )
    winners = [o for o in outcomes if isinstance(o, pb.Project)]
    assert len(winners) == 1 and winners[0].state == ACTIVE
    losers = [o for o in outcomes if not isinstance(o, pb.Project)]
    assert all(_is_error(o, CODE.FAILED_PRECONDITION, "INVALID_STATE_TRANSITION") for o in losers)


@pytest.mark.parametrize("method", ["CompleteProject", "ArchiveProject"])
async def test_a_state_change_racing_feedback_leaves_none_after_it(
    app: App, stub: Stub, method: str
) -> None:
    """The project a state change returns counts its feedback in the same transaction: if any
    AddFeedback that read ACTIVE could commit after the change, the final count would exceed
    the one the change returned."""
    owner, author = await make_user(app), await make_user(app)
    refusal = {
        "CompleteProject": (CODE.FAILED_PRECONDITION, "PROJECT_NOT_ACTIVE"),
        "ArchiveProject": (CODE.NOT_FOUND, "PROJECT_NOT_FOUND"),
    }[method]
    for round_ in range(8):
        project = await project_in(stub, owner, ACTIVE)
        calls: list[Awaitable[Any]] = [
            add_feedback(stub, author, project.id, score=3) for _ in range(12)
        ]
        calls.insert(round_, change(stub, owner, method, project.id))
        outcomes = await _outcomes(calls)
        (changed,) = [o for o in outcomes if isinstance(o, pb.Project)]
        added = [o for o in outcomes if isinstance(o, pb.Feedback)]
        refused = [o for o in outcomes if not isinstance(o, pb.Project | pb.Feedback)]
        # Completed, the project is still visible and refuses; archived, it is hidden from the
        # author and so absent.
        assert all(_is_error(o, *refusal) for o in refused), refused
        final = await get_project(stub, owner, project.id)
        assert final.feedback_count == changed.feedback_count == len(added)


async def _waiting_on_locks(conn: asyncpg.Connection, database: str) -> int:
    sql = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = $1 AND wait_event_type = 'Lock' AND backend_type = 'client backend'"
    )
    return int(await conn.fetchval(sql, database))


async def test_feedback_blocked_mid_insert_holds_the_state_change_back(
    app: App, stub: Stub
) -> None:
    """The interleaving the FOR SHARE lock exists for, forced: AddFeedback has read ACTIVE and
    waits to insert (a test transaction locks the feedback table); CompleteProject must wait
    for it, not complete underneath it."""
    owner, author = await make_user(app), await make_user(app)
    project = await project_in(stub, owner, ACTIVE)
    url = make_url(app.settings.database_url or "")
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        blocker = conn.transaction()
        await blocker.start()
        await conn.execute("LOCK TABLE feedback IN SHARE MODE")  # blocks INSERT, not SELECT
        adding = asyncio.ensure_future(add_feedback(stub, author, project.id, score=5))
        for _ in range(500):
            if await _waiting_on_locks(conn, url.database or "") == 1:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("AddFeedback never reached its INSERT")
        completing = asyncio.ensure_future(change(stub, owner, "CompleteProject", project.id))
        for _ in range(500):  # until CompleteProject is either done or waiting too
            if completing.done() or await _waiting_on_locks(conn, url.database or "") == 2:
                break
            await asyncio.sleep(0.01)
        assert not completing.done(), "CompleteProject finished under a pending AddFeedback"
        await blocker.commit()
        added, completed = await asyncio.gather(adding, completing)
    finally:
        await conn.close()
    assert added.project_id == project.id
    assert (completed.state, completed.feedback_count) == (COMPLETED, 1)
