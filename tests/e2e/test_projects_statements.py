"""No N+1: the SQL statements a ListProjects page or a GetProject issues do not grow with the
number of projects on the page or the feedback on them (counted at the engine's cursor)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import grpc.aio
import pytest
from docgate.v1 import projects_pb2 as pb
from sqlalchemy import event, insert

from docgate.bootstrap import App
from docgate.db.models import Feedback, Project
from docgate.policy import ProjectState
from docgate.principal import SYSTEM, acting_as
from tests.conformance.projects_support import Stub, get_project
from tests.conformance.support import DEADLINE
from tests.support import TestUser, make_user

ORDERS = ("", "create_time desc", "name", "average_score desc")
# The health checker probes the same engine in the background (docgate.db.schema).
HEALTH_PROBES = ("SELECT 1", "SELECT version_num FROM alembic_version")


@contextmanager
def statements(app: App) -> Iterator[list[str]]:
    """The SQL the app's engine sends while the block runs. The auth interceptor's principal
    query runs on the asyncpg driver directly and is not seen here: it is one per call and
    does not depend on what the call reads."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.strip() not in HEALTH_PROBES:
            seen.append(statement)

    engine = app.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _projects_with_feedback(app: App, owner: TestUser, count: int, each: int) -> list[str]:
    """``count`` ACTIVE projects of ``owner`` with ``each`` feedback items apiece."""
    with acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            ids = list(
                (
                    await session.execute(
                        insert(Project).returning(Project.id),
                        [
                            {"name": f"p{i:03}", "owner_id": owner.id, "state": ProjectState.ACTIVE}
                            for i in range(count)
                        ],
                    )
                ).scalars()
            )
            rows = [
                {"project_id": pid, "author_id": owner.id, "content": "c", "score": (j % 5) + 1}
                for pid in ids
                for j in range(each)
            ]
            if rows:
                await session.execute(insert(Feedback), rows)
    return [str(pid) for pid in ids]


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


async def _page_cost(app: App, stub: Stub, owner: TestUser, size: int, order_by: str) -> int:
    request = pb.ListProjectsRequest(owner_id=str(owner.id), page_size=size, order_by=order_by)
    with statements(app) as seen:
        page = await stub.ListProjects(request, metadata=owner.metadata, timeout=DEADLINE)
    assert len(page.projects) == size
    assert all(p.feedback_count == 3 and p.HasField("average_score") for p in page.projects)
    return len(seen)


@pytest.mark.parametrize("order_by", ORDERS)
async def test_a_list_page_costs_the_same_for_5_and_50_projects(
    app: App, stub: Stub, order_by: str
) -> None:
    owner, viewer = await make_user(app), await make_user(app)
    await _projects_with_feedback(app, owner, 60, 3)
    small = await _page_cost(app, stub, owner, 5, order_by)
    large = await _page_cost(app, stub, owner, 50, order_by)
    # One statement: the projects with their count and average (a LATERAL aggregate).
    assert small == large == 1, (small, large)
    # A caller under the member rule (not the owner) pays the same.
    request = pb.ListProjectsRequest(owner_id=str(owner.id), page_size=50, order_by=order_by)
    with statements(app) as seen:
        page = await stub.ListProjects(request, metadata=viewer.metadata, timeout=DEADLINE)
    assert len(page.projects) == 50 and len(seen) == large


async def test_the_full_view_is_bounded(app: App, stub: Stub) -> None:
    owner = await make_user(app)
    few = await _projects_with_feedback(app, owner, 1, 1)
    many = await _projects_with_feedback(app, owner, 1, 40)
    costs = {}
    for pid, feedback in ((few[0], 1), (many[0], 40)):
        for full in (False, True):
            with statements(app) as seen:
                got = await get_project(stub, owner, pid, full=full)
            assert got.feedback_count == feedback
            assert len(got.recent_feedback) == (min(feedback, 20) if full else 0)
            costs[feedback, full] = len(seen)
    # BASIC: the project with its aggregates; FULL: one more, for the newest feedback.
    assert costs[1, False] == costs[40, False] == 1, costs
    assert costs[1, True] == costs[40, True] == 2, costs


async def test_the_counter_sees_statements(app: App, stub: Stub) -> None:
    """The counter is not blind: a page of projects is at least one statement."""
    owner = await make_user(app)
    with statements(app) as seen:
        await stub.ListProjects(
            pb.ListProjectsRequest(owner_id=str(uuid.uuid4())), metadata=owner.metadata
        )
    assert any("projects" in s for s in seen), seen
