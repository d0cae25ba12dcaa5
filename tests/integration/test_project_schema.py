"""The projects, feedback and templates tables (revision 0003) hold only what the issue allows,
checked by PostgreSQL itself (rows written with Core statements on the models, past every
docgate layer); and the project visibility rule of docgate.policy, run against real rows in
every state, agrees with a plain-Python oracle for every kind of caller, through each of the
three ways statements are built (Core, prepared, ORM criteria)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Text, bindparam, cast, delete, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import with_loader_criteria

from docgate import policy
from docgate.bootstrap import App
from docgate.db.models import Document, Feedback, Project, ProjectState, Template
from docgate.db.prepared import PreparedQuery
from docgate.principal import Principal, acting_as
from tests.support import make_user, unique


async def _insert(app: App, model: Any, **values: Any) -> uuid.UUID:
    async with app.engine.connect() as conn:
        row_id: uuid.UUID = (
            await conn.execute(insert(model).values(**values).returning(model.id))
        ).scalar_one()
    return row_id


async def _refused(app: App, constraint: str, model: Any, **values: Any) -> None:
    with pytest.raises(DBAPIError) as caught:
        await _insert(app, model, **values)
    assert constraint in str(caught.value)


async def _project(app: App, owner: uuid.UUID, **values: Any) -> uuid.UUID:
    return await _insert(app, Project, name=unique("p"), owner_id=owner, **values)


@pytest.fixture
async def owner(app: App) -> uuid.UUID:
    return (await make_user(app, "free_user")).id


async def test_a_new_project_is_a_draft_at_version_1(app: App, owner: uuid.UUID) -> None:
    project_id = await _project(app, owner)
    async with app.engine.connect() as conn:
        row = (await conn.execute(select(Project).where(Project.id == project_id))).one()
        stored = await conn.scalar(
            select(cast(Project.state, Text)).where(Project.id == project_id)
        )
    assert (row.state, row.archived_from, row.version, row.description) == (
        ProjectState.DRAFT, None, 1, "",
    )  # fmt: skip
    assert stored == "draft"  # the enum's values are stored, not the member names


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"name": ""}, "ck_projects_name_length"),
        ({"name": "x" * 256}, "character varying(255)"),  # before the CHECK
        ({"name": " padded"}, "ck_projects_name_trimmed"),
        ({"description": "d" * 10_001}, "ck_projects_description_length"),
        ({"state": ProjectState.ARCHIVED}, "ck_projects_archived_from_iff_archived"),
        (
            {"state": ProjectState.ACTIVE, "archived_from": ProjectState.DRAFT},
            "ck_projects_archived_from_iff_archived",
        ),
        (
            {"state": ProjectState.ARCHIVED, "archived_from": ProjectState.ARCHIVED},
            "ck_projects_archived_from_not_archived",
        ),
    ],
    ids=lambda v: str(v)[:40],
)
async def test_project_checks(
    app: App, owner: uuid.UUID, values: dict[str, Any], constraint: str
) -> None:
    await _refused(app, constraint, Project, **{"name": unique("p"), "owner_id": owner} | values)


async def test_an_archived_project_remembers_where_it_came_from(app: App, owner: uuid.UUID) -> None:
    for source in (ProjectState.DRAFT, ProjectState.ACTIVE, ProjectState.COMPLETED):
        await _project(app, owner, state=ProjectState.ARCHIVED, archived_from=source)


async def test_request_id_is_unique_per_owner(app: App, owner: uuid.UUID) -> None:
    other = (await make_user(app, "free_user")).id
    key = uuid.uuid4()
    await _project(app, owner, request_id=key)
    await _project(app, other, request_id=key)
    await _refused(
        app, "uq_projects_owner_id_request_id", Project,
        name=unique("p"), owner_id=owner, request_id=key,
    )  # fmt: skip


@pytest.mark.parametrize("score", [0.0, 0.999, 5.001, 6.0, float("nan"), float("inf"), -1.0])
async def test_scores_outside_1_to_5_are_refused(app: App, owner: uuid.UUID, score: float) -> None:
    project_id = await _project(app, owner)
    await _refused(
        app, "ck_feedback_score_range", Feedback,
        project_id=project_id, author_id=owner, content="c", score=score,
    )  # fmt: skip


async def test_scores_from_1_to_5_and_none_are_kept(app: App, owner: uuid.UUID) -> None:
    project_id = await _project(app, owner)
    for score in (1.0, 2.5, 5.0, None):
        await _insert(
            app, Feedback, project_id=project_id, author_id=owner, content="c", score=score
        )
    async with app.engine.connect() as conn:
        scores = (
            await conn.scalars(select(Feedback.score).where(Feedback.project_id == project_id))
        ).all()
    assert sorted(scores, key=lambda s: -1 if s is None else s) == [None, 1.0, 2.5, 5.0]


@pytest.mark.parametrize("content", ["", "c" * 10_001])
async def test_feedback_content_length(app: App, owner: uuid.UUID, content: str) -> None:
    project_id = await _project(app, owner)
    await _refused(
        app, "ck_feedback_content_length", Feedback,
        project_id=project_id, author_id=owner, content=content,
    )  # fmt: skip


async def test_deleting_a_project_removes_its_feedback_and_detaches_its_documents(
    app: App, owner: uuid.UUID
) -> None:
    doomed, kept = await _project(app, owner), await _project(app, owner)
    for project_id in (doomed, kept):
        await _insert(app, Feedback, project_id=project_id, author_id=owner, content="c")
    in_doomed = await _insert(app, Document, title="t", owner_id=owner, project_id=doomed)
    in_kept = await _insert(app, Document, title="t", owner_id=owner, project_id=kept)
    async with app.engine.connect() as conn:
        await conn.execute(delete(Project).where(Project.id == doomed))
        feedback = (
            await conn.scalars(
                select(Feedback.project_id).where(Feedback.project_id.in_([doomed, kept]))
            )
        ).all()
        rows = await conn.execute(
            select(Document.id, Document.project_id).where(Document.id.in_([in_doomed, in_kept]))
        )
        documents = {doc: project for doc, project in rows}
    assert feedback == [kept]
    assert documents == {in_doomed: None, in_kept: kept}


async def test_a_document_cannot_name_a_missing_project(app: App, owner: uuid.UUID) -> None:
    await _refused(
        app, "fk_documents_project_id_projects", Document,
        title="t", owner_id=owner, project_id=uuid.uuid4(),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"name": "a"}, "ck_templates_name_slug"),  # at least 2 characters
        ({"name": "Upper"}, "ck_templates_name_slug"),
        ({"name": "9lives"}, "ck_templates_name_slug"),
        ({"name": "under_score"}, "ck_templates_name_slug"),
        ({"name": "trailing\n"}, "ck_templates_name_slug"),
        ({"title": ""}, "ck_templates_title_length"),
        ({"description": "d" * 10_001}, "ck_templates_description_length"),
        ({"body": "é" * (512 * 1024 + 1)}, "ck_templates_body_size"),  # 1 MiB + 2 bytes
    ],
    ids=lambda v: str(v)[:40],
)
async def test_template_checks(app: App, values: dict[str, Any], constraint: str) -> None:
    await _refused(app, constraint, Template, **{"name": unique("t"), "title": "T"} | values)


async def test_template_names_are_unique_slugs(app: App) -> None:
    name = "a-" + uuid.uuid4().hex[:20]
    await _insert(app, Template, name=name, title="T", body="x" * (1024 * 1024))
    await _refused(app, "uq_templates_name", Template, name=name, title="T")


# --- the visibility predicate against real rows ----------------------------------------------


def oracle_sees(principal: Principal | None, owner_id: uuid.UUID, state: ProjectState) -> bool:
    """The issue's words: admins see every project; the owner sees their own; everyone else
    sees ACTIVE and COMPLETED."""
    if principal is None:
        return False
    if "admin" in principal.roles or principal.user_id == owner_id:
        return True
    return state in (ProjectState.ACTIVE, ProjectState.COMPLETED)


# Every state; ARCHIVED once from each state it can be archived from.
ROWS = [
    (ProjectState.DRAFT, None),
    (ProjectState.ACTIVE, None),
    (ProjectState.COMPLETED, None),
    (ProjectState.ARCHIVED, ProjectState.DRAFT),
    (ProjectState.ARCHIVED, ProjectState.ACTIVE),
    (ProjectState.ARCHIVED, ProjectState.COMPLETED),
]


@pytest.fixture(scope="module")
async def world(app: App) -> tuple[dict[uuid.UUID, tuple[uuid.UUID, ProjectState]], list[Any]]:
    """Projects in every state for two owners, and the callers to look at them."""
    first, second = await make_user(app, "free_user"), await make_user(app, "paid_user")
    projects = {}
    for owner in (first.id, second.id):
        for state, archived_from in ROWS:
            project_id = await _project(app, owner, state=state, archived_from=archived_from)
            projects[project_id] = (owner, state)
    callers: list[Principal | None] = [
        Principal(first.id, first.username, frozenset(first.roles)),
        Principal(second.id, second.username, frozenset(second.roles)),
        Principal(uuid.uuid4(), "stranger", frozenset({"free_user"})),
        Principal(uuid.uuid4(), "paid-stranger", frozenset({"paid_user"})),
        Principal(uuid.uuid4(), "no-roles", frozenset()),
        Principal(uuid.uuid4(), "admin", frozenset({"admin"})),
        Principal(first.id, first.username, frozenset({"admin", "free_user"})),
        None,
    ]
    return projects, callers


def _expected(
    projects: dict[uuid.UUID, tuple[uuid.UUID, ProjectState]], who: Principal | None
) -> set[uuid.UUID]:
    return {pid for pid, (owner, state) in projects.items() if oracle_sees(who, owner, state)}


async def test_core_predicate_agrees_with_the_oracle(app: App, world: Any) -> None:
    projects, callers = world
    async with app.engine.connect() as conn:
        for who in callers:
            caller = who.user_id if who is not None else None
            visible = policy.project_predicate(policy.project_audience(who), Project, caller)
            statement = select(Project.id).where(visible, Project.id.in_(list(projects)))
            assert set((await conn.scalars(statement)).all()) == _expected(projects, who), who


async def test_one_prepared_statement_per_audience_serves_every_caller(
    app: App, world: Any
) -> None:
    """Built once per audience with the caller as a bound parameter, as the hot paths do."""
    projects, callers = world
    table = Project.__table__
    statements = {
        who: PreparedQuery(
            select(table.c.id).where(
                policy.project_predicate(who, table.c, bindparam("caller", type_=UUID())),
                table.c.id == func.any(bindparam("ids", type_=ARRAY(UUID()))),
            )
        )
        for who in policy.ProjectAudience
    }
    async with app.engine.connect() as conn:
        for who in callers:
            audience = policy.project_audience(who)
            # Every parameter on every call; NOBODY's statement is a constant false.
            params: dict[str, Any] = {}
            if audience is not policy.ProjectAudience.NOBODY:
                params["ids"] = list(projects)
            if audience is policy.ProjectAudience.MEMBER:
                params["caller"] = who.user_id
            rows = await statements[audience].fetch(conn, **params)
            assert {r["id"] for r in rows} == _expected(projects, who), who


async def test_orm_criteria_agree_with_the_oracle(app: App, world: Any) -> None:
    """project_visibility's lambdas, as the listener would apply them: one cached shape per
    audience, each caller's own id bound."""
    projects, callers = world
    for who in callers:
        with acting_as(who):
            async with app.uow.read() as session:
                statement = select(Project).where(Project.id.in_(list(projects)))
                statement = statement.options(
                    with_loader_criteria(Project, policy.project_visibility(who))
                )
                rows = (await session.scalars(statement)).all()
        assert {p.id for p in rows} == _expected(projects, who), who
        assert all(oracle_sees(who, p.owner_id, p.state) for p in rows)
