"""Every ProjectService read path agrees with a plain-Python model of the project rules.

One world per module, in a database of its own (so an unfiltered ListProjects lists exactly
this world): owners with different role sets (an admin among them), projects of each in every
state — ARCHIVED from each of the others — with tied names and create times, and random
feedback (scored, unscored, none, more than a FULL view shows). Callers are the owners, an
admin, strangers with built-in, custom and no roles. Exhaustively: GetProject (both views) and
ListFeedback for every caller and project. Drawn by hypothesis: ListProjects with every state
filter, owner filter and order_by, paged with changing small page sizes; ListFeedback pages.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
import pytest
from docgate.v1 import access_pb2, access_pb2_grpc
from docgate.v1 import projects_pb2 as pb
from google.protobuf import field_mask_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from docgate.bootstrap import App, build_app
from docgate.db.models import Feedback, Project, Role
from docgate.policy import ProjectState
from docgate.principal import SYSTEM, acting_as
from docgate.server import start_server
from tests.conformance.projects_support import ACTIVE, ARCHIVED, COMPLETED, DRAFT, STATES, Stub
from tests.conformance.support import DEADLINE, answer, fails
from tests.conftest import settings_for
from tests.support import TestUser, make_user, unique

CUSTOM = unique("c")
OWNER_ROLES = (("free_user",), ("paid_user",), (CUSTOM,), ("admin",))
OTHER_ROLES = (("admin",), ("free_user",), (), (CUSTOM, "paid_user"))
BASE = datetime(2026, 1, 1, tzinfo=UTC)
# Halves sum exactly in binary floating point, so PostgreSQL's average and the model's are the
# same number (and equal averages really tie, ordered by id).
SCORES = [1 + i / 2 for i in range(9)]
RECENT = 20  # GetProject FULL: the newest 20
UNSET_ID = uuid.UUID(int=0)  # assigned by the database


@dataclass(frozen=True)
class Caller:
    user: TestUser
    admin: bool


@dataclass
class Item:
    id: uuid.UUID
    author: uuid.UUID
    score: float | None
    create: datetime


@dataclass
class Proj:
    owner: uuid.UUID
    state: int
    archived_from: int | None
    name: str
    create: datetime
    feedback: list[Item] = field(default_factory=list)
    id: uuid.UUID = UNSET_ID

    def seen_by(self, caller: Caller) -> bool:
        """The issue: admins see every project; the owner sees their own; everyone else sees
        ACTIVE and COMPLETED projects."""
        return caller.admin or caller.user.id == self.owner or self.state in (ACTIVE, COMPLETED)

    @property
    def average(self) -> float | None:
        scored = [f.score for f in self.feedback if f.score is not None]
        return sum(scored) / len(scored) if scored else None

    def newest_first(self) -> list[str]:
        return [
            str(f.id) for f in sorted(self.feedback, key=lambda f: (f.create, f.id), reverse=True)
        ]


# order_by → (sort key of the model, descending)
ORDERS: dict[str, tuple[Any, bool]] = {
    "": (lambda p: (p.create, p.id), True),
    "create_time desc": (lambda p: (p.create, p.id), True),
    "name": (lambda p: (p.name, p.id), False),
    "average_score desc": (lambda p: (p.average if p.average is not None else 0.0, p.id), True),
}


@dataclass
class World:
    stub: Stub
    callers: list[Caller]
    owners: list[uuid.UUID]
    projects: list[Proj]
    absent: dict[str, tuple[Any, ...]]
    access: access_pb2_grpc.AccessServiceStub | None = None


def _draw_projects(
    rng: random.Random, owners: list[uuid.UUID], everyone: list[uuid.UUID]
) -> list[Proj]:
    starts = [(s, None) for s in (DRAFT, ACTIVE, COMPLETED)] + [
        (ARCHIVED, s) for s in (DRAFT, ACTIVE, COMPLETED)
    ]
    projects = []
    for owner in owners:
        for state, left in starts:
            for _ in range(rng.randint(1, 2)):
                name = "".join(rng.choice("ab") for _ in range(rng.randint(1, 2)))
                create = BASE + timedelta(seconds=rng.randint(0, 4))
                projects.append(Proj(owner, state, left, name, create))
    for project in projects:
        if not {project.state, project.archived_from} & {ACTIVE, COMPLETED}:
            continue  # feedback is only ever added while ACTIVE
        for _ in range(rng.choice([0, 1, 2, 4, 6])):
            score = rng.choice(SCORES) if rng.random() < 0.7 else None
            moment = project.create + timedelta(seconds=rng.randint(1, 3))
            project.feedback.append(Item(UNSET_ID, rng.choice(everyone), score, moment))
    crowded = next(p for p in projects if p.state == COMPLETED)
    for _ in range(RECENT + 5):
        moment = crowded.create + timedelta(seconds=rng.randint(1, 9))
        crowded.feedback.append(Item(UNSET_ID, owners[0], rng.choice([None, *SCORES]), moment))
    return projects


async def _insert(app: App, projects: list[Proj]) -> None:
    states = {s: ProjectState[pb.Project.State.Name(s)] for s in STATES}
    rows = [
        {"name": p.name, "owner_id": p.owner, "state": states[p.state],
         "archived_from": None if p.archived_from is None else states[p.archived_from],
         "create_time": p.create, "update_time": p.create}
        for p in projects
    ]  # fmt: skip
    items = [f for p in projects for f in p.feedback]
    with acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            stmt = insert(Project).returning(Project.id, sort_by_parameter_order=True)
            for p, pid in zip(projects, (await session.execute(stmt, rows)).scalars(), strict=True):
                p.id = pid
            rows = [
                {"project_id": p.id, "author_id": f.author, "content": "c", "score": f.score,
                 "create_time": f.create}
                for p in projects for f in p.feedback
            ]  # fmt: skip
            stmt = insert(Feedback).returning(Feedback.id, sort_by_parameter_order=True)
            for f, fid in zip(items, (await session.execute(stmt, rows)).scalars(), strict=True):
                f.id = fid


async def _absent(call: Any) -> tuple[Any, ...]:
    return answer(await fails(call, grpc.StatusCode.NOT_FOUND))


@pytest.fixture(scope="module")
async def world(module_database_url: str) -> AsyncIterator[World]:
    url = module_database_url
    app = build_app(settings_for(url), url)
    running = await start_server(app, "127.0.0.1:0")
    try:
        with acting_as(SYSTEM):
            async with app.uow.transaction() as session:
                await session.execute(insert(Role).values(name=CUSTOM))
        owners = [Caller(await make_user(app, *r), "admin" in r) for r in OWNER_ROLES]
        others = [Caller(await make_user(app, *r), "admin" in r) for r in OTHER_ROLES]
        callers = owners + others
        owner_ids = [c.user.id for c in owners]
        projects = _draw_projects(random.Random(10), owner_ids, [c.user.id for c in callers])
        await _insert(app, projects)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub, md = Stub(channel), callers[-1].user.metadata
            nobody = str(uuid.uuid4())
            absent = {
                "get": await _absent(stub.GetProject(pb.GetProjectRequest(id=nobody), metadata=md)),
                "feedback": await _absent(
                    stub.ListFeedback(pb.ListFeedbackRequest(project_id=nobody), metadata=md)
                ),
            }
            access = access_pb2_grpc.AccessServiceStub(channel)
            explain = access_pb2.ExplainProjectAccessRequest(project_id=nobody)
            absent["explain"] = await _absent(access.ExplainProjectAccess(explain, metadata=md))
            yield World(stub, callers, owner_ids, projects, absent, access)
    finally:
        await running.stop(None)
        await app.close()


def _shape(p: pb.Project) -> tuple[Any, ...]:
    return (
        p.id,
        p.name,
        p.state,
        p.owner_id,
        p.create_time.ToDatetime(tzinfo=UTC),
        p.feedback_count,
        p.average_score if p.HasField("average_score") else None,
    )


def _model(p: Proj) -> tuple[Any, ...]:
    return (str(p.id), p.name, p.state, str(p.owner), p.create, len(p.feedback), p.average)


async def _feedback_pages(stub: Stub, caller: Caller, project: Proj, sizes: list[int]) -> Any:
    request = pb.ListFeedbackRequest(project_id=str(project.id))
    ids: list[str] = []
    for page_number in range(200):
        request.page_size = sizes[page_number % len(sizes)]
        try:
            page = await stub.ListFeedback(request, metadata=caller.user.metadata, timeout=DEADLINE)
        except grpc.aio.AioRpcError as error:
            return answer(error)
        ids.extend(f.id for f in page.feedback)
        if not page.next_page_token:
            return ids
        request.page_token = page.next_page_token
    raise AssertionError("pagination did not end")


def test_the_world_has_what_the_rules_are_about(world: World) -> None:
    starts = {(p.state, p.archived_from) for p in world.projects}
    assert len(starts) == 6 and len({p.owner for p in world.projects}) == len(world.owners)
    averages = [p.average for p in world.projects if p.feedback]
    assert None in averages and len(set(averages)) < len(averages)  # unscored, and ties
    assert any(len(p.feedback) > RECENT for p in world.projects)


@pytest.mark.parametrize("index", range(len(OWNER_ROLES) + len(OTHER_ROLES)))
async def test_get_and_feedback_for_every_project(world: World, index: int) -> None:
    caller, stub = world.callers[index], world.stub
    for project in world.projects:
        for view in (pb.PROJECT_VIEW_BASIC, pb.PROJECT_VIEW_FULL):
            request = pb.GetProjectRequest(id=str(project.id), view=view)
            call = stub.GetProject(request, metadata=caller.user.metadata, timeout=DEADLINE)
            if not project.seen_by(caller):
                assert answer(await fails(call, grpc.StatusCode.NOT_FOUND)) == world.absent["get"]
                continue
            got = await call
            assert _shape(got) == _model(project)
            recent = project.newest_first()[:RECENT] if view == pb.PROJECT_VIEW_FULL else []
            assert [f.id for f in got.recent_feedback] == recent
        listed = await _feedback_pages(stub, caller, project, [0])  # one page; small ones below
        assert listed == (
            project.newest_first() if project.seen_by(caller) else world.absent["feedback"]
        )


async def _succeeds(call: Any) -> bool:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        code = error.code()
    else:
        return True
    assert code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED), code
    return False


@pytest.mark.parametrize("index", range(len(OWNER_ROLES) + len(OTHER_ROLES)))
async def test_explanations_agree_with_get_and_update(world: World, index: int) -> None:
    """ExplainProjectAccess (issue 15) against the real paths: decision is VISIBLE exactly when
    GetProject succeeds, can_update exactly when UpdateProject does (the same name again: the
    world's reads stay as they were), can_delete exactly when the project may be deleted by
    the issue's rule (owner or admin, DRAFT or ARCHIVED; not executed: it would change the
    world). An admin asks about the caller; the caller about themselves gets the same answer,
    or, when they cannot see the project, the NOT_FOUND of a missing id."""
    caller, stub, access = world.callers[index], world.stub, world.access
    assert access is not None
    explainer = next(c for c in world.callers if c.admin and c is not caller)
    md = caller.user.metadata
    for project in world.projects:
        pid = str(project.id)
        readable = await _succeeds(stub.GetProject(pb.GetProjectRequest(id=pid), metadata=md))
        request = access_pb2.ExplainProjectAccessRequest(
            project_id=pid, user_id=str(caller.user.id)
        )
        about = await access.ExplainProjectAccess(request, metadata=explainer.user.metadata)
        assert (about.decision == access_pb2.AccessExplanation.VISIBLE) == readable
        own = access.ExplainProjectAccess(
            access_pb2.ExplainProjectAccessRequest(project_id=pid), metadata=md
        )
        if readable:
            assert await own == about
        else:
            assert answer(await fails(own, grpc.StatusCode.NOT_FOUND)) == world.absent["explain"]
        update = pb.UpdateProjectRequest(
            project=pb.Project(id=pid, name=project.name),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
        assert await _succeeds(stub.UpdateProject(update, metadata=md)) == about.can_update
        may_change = caller.admin or caller.user.id == project.owner
        assert about.can_delete == (may_change and project.state in (DRAFT, ARCHIVED))


QUERIES = st.fixed_dictionaries(
    {
        "caller": st.integers(0, len(OWNER_ROLES) + len(OTHER_ROLES) - 1),
        "state": st.sampled_from([pb.Project.STATE_UNSPECIFIED, *STATES]),
        "owner": st.one_of(st.none(), st.integers(0, len(OWNER_ROLES) - 1), st.just("nobody")),
        "order_by": st.sampled_from(list(ORDERS)),
        "sizes": st.lists(st.integers(0, 4), min_size=1, max_size=3),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    query=QUERIES,
    feedback_of=st.integers(0, 10_000),
    feedback_sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3),
)
async def test_list_projects_agrees_with_the_model(
    world: World, query: dict[str, Any], feedback_of: int, feedback_sizes: list[int]
) -> None:
    caller = world.callers[query["caller"]]
    owner = query["owner"]
    owner_id = (
        None if owner is None else (uuid.uuid4() if owner == "nobody" else world.owners[owner])
    )
    wanted = [
        p
        for p in world.projects
        if p.seen_by(caller)
        and query["state"] in (pb.Project.STATE_UNSPECIFIED, p.state)
        and owner_id in (None, p.owner)
    ]
    key, descending = ORDERS[query["order_by"]]
    expected = [_model(p) for p in sorted(wanted, key=key, reverse=descending)]
    request = pb.ListProjectsRequest(
        state=query["state"], owner_id=str(owner_id or ""), order_by=query["order_by"]
    )
    sizes, listed = query["sizes"], []
    for page_number in range(200):
        request.page_size = sizes[page_number % len(sizes)]
        page = await world.stub.ListProjects(
            request, metadata=caller.user.metadata, timeout=DEADLINE
        )
        full_page = request.page_size or 50
        assert (
            len(page.projects) == full_page
            if page.next_page_token
            else len(page.projects) <= full_page
        )
        listed.extend(_shape(p) for p in page.projects)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert listed == expected, query
    project = world.projects[feedback_of % len(world.projects)]
    got = await _feedback_pages(world.stub, caller, project, feedback_sizes)
    assert got == (project.newest_first() if project.seen_by(caller) else world.absent["feedback"])
