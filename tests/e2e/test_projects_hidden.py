"""Hidden is absent: for every RPC that names a project, a stranger's answer about a DRAFT or
ARCHIVED project of someone else is byte-identical to the answer about a random id, and
nothing changes in PostgreSQL (checked directly)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as dpb
from docgate.v1 import documents_pb2_grpc
from docgate.v1 import projects_pb2 as pb
from google.protobuf import field_mask_pb2

from docgate.bootstrap import App
from tests.conformance.projects_support import (
    ACTIVE,
    ARCHIVED,
    COMPLETED,
    DRAFT,
    STATE_METHODS,
    Stub,
    add_feedback,
    change,
    project_in,
    random_id,
)
from tests.conformance.support import answer, create
from tests.support import TestUser, count_rows, expect_error, make_user

CODE = grpc.StatusCode
Documents = documents_pb2_grpc.DocumentServiceStub
# A call about a project id (and an etag to send), awaiting to an answer.
Call = Callable[[str, str], Any]
# The owner of the hidden projects, an author of feedback on them, the projects by case.
World = tuple[TestUser, TestUser, dict[str, Any]]


def _calls(stub: Stub, docs: Documents, who: TestUser, own_doc: str, slug: str) -> dict[str, Call]:
    md = who.metadata
    mask = field_mask_pb2.FieldMask(paths=["name"])
    calls: dict[str, Call] = {
        "get": lambda pid, _: stub.GetProject(pb.GetProjectRequest(id=pid), metadata=md),
        "get-full": lambda pid, _: stub.GetProject(
            pb.GetProjectRequest(id=pid, view=pb.PROJECT_VIEW_FULL), metadata=md
        ),
        "update": lambda pid, etag: stub.UpdateProject(
            pb.UpdateProjectRequest(
                project=pb.Project(id=pid, name="mine now"), update_mask=mask, etag=etag
            ),
            metadata=md,
        ),
        "delete": lambda pid, etag: stub.DeleteProject(
            pb.DeleteProjectRequest(id=pid, etag=etag), metadata=md
        ),
        "add-feedback": lambda pid, _: stub.AddFeedback(
            pb.AddFeedbackRequest(project_id=pid, feedback=pb.Feedback(content="hi", score=5)),
            metadata=md,
        ),
        "list-feedback": lambda pid, _: stub.ListFeedback(
            pb.ListFeedbackRequest(project_id=pid, page_size=1), metadata=md
        ),
        "create-document": lambda pid, _: docs.CreateDocument(
            dpb.CreateDocumentRequest(document=dpb.Document(title="t", project_id=pid)),
            metadata=md,
        ),
        "move-document": lambda pid, etag: docs.UpdateDocument(
            dpb.UpdateDocumentRequest(
                document=dpb.Document(id=own_doc, project_id=pid),
                update_mask=field_mask_pb2.FieldMask(paths=["project_id"]),
            ),
            metadata=md,
        ),
        "from-template": lambda pid, _: stub.CreateDocumentFromTemplate(
            pb.CreateDocumentFromTemplateRequest(template=slug, title="t", project_id=pid),
            metadata=md,
        ),
    }
    for method, request in STATE_METHODS.items():
        calls[method] = lambda pid, etag, m=method, r=request: getattr(stub, m)(
            r(id=pid, etag=etag), metadata=md
        )
    return calls


async def _rows(app: App, owner: TestUser) -> tuple[int, ...]:
    """Everything a stranger's call could have changed, straight from the database."""
    queries = (
        "SELECT count(*) FROM projects WHERE owner_id = :owner",
        "SELECT coalesce(sum(version), 0) FROM projects WHERE owner_id = :owner",
        "SELECT count(*) FROM feedback f JOIN projects p ON p.id = f.project_id"
        " WHERE p.owner_id = :owner",
        "SELECT count(*) FROM documents d JOIN projects p ON p.id = d.project_id"
        " WHERE p.owner_id = :owner",
    )
    return tuple([await count_rows(app, sql, owner=owner.id) for sql in queries])


@pytest.fixture(scope="module")
async def hidden_world(app: App, channel: grpc.aio.Channel) -> World:
    """An owner's projects that strangers may not see, some with feedback and documents."""
    stub, docs = Stub(channel), Documents(channel)
    owner, helper = await make_user(app, "free_user"), await make_user(app)
    projects = {"draft": await project_in(stub, owner, DRAFT)}
    for left in (DRAFT, ACTIVE, COMPLETED):
        project = await project_in(stub, owner, DRAFT if left == DRAFT else ACTIVE)
        # Private: a public document would be visible whatever its project (the document
        # rules are unchanged by projects), and so would its project_id.
        await create(docs, owner, project_id=project.id)
        if left != DRAFT:
            await add_feedback(stub, helper, project.id, score=4)
            await add_feedback(stub, owner, project.id)
        if left == COMPLETED:
            await change(stub, owner, "CompleteProject", project.id)
        archived = await change(stub, owner, "ArchiveProject", project.id)
        assert archived.state == ARCHIVED
        projects[f"archived-from-{pb.Project.State.Name(left)}"] = archived
    return owner, helper, projects


@pytest.mark.parametrize("roles", [("paid_user",), ("free_user",), ()], ids=str)
async def test_hidden_projects_answer_like_missing_ones(
    app: App,
    channel: grpc.aio.Channel,
    admin: TestUser,
    hidden_world: World,
    roles: tuple[str, ...],
) -> None:
    owner, _helper, projects = hidden_world
    stub, docs = Stub(channel), Documents(channel)
    stranger = await make_user(app, *roles)
    slug = f"hidden-{random_id()[:8]}"
    await stub.CreateTemplate(
        pb.CreateTemplateRequest(template=pb.Template(name=slug, title="t", body="plain")),
        metadata=admin.metadata,
    )
    own_doc = (await create(docs, stranger)).id
    before = await _rows(app, owner)
    for rpc, call in _calls(stub, docs, stranger, own_doc, slug).items():
        for case, project in projects.items():
            for etag in ("", project.etag, 'W/"1"'):
                missing = await expect_error(call(random_id(), etag), CODE.NOT_FOUND)
                hidden = await expect_error(call(project.id, etag), CODE.NOT_FOUND)
                assert answer(hidden) == answer(missing), (rpc, case, etag)
    assert await _rows(app, owner) == before
    sql = "SELECT count(*) FROM documents WHERE owner_id = :owner AND project_id IS NOT NULL"
    assert await count_rows(app, sql, owner=stranger.id) == 0


async def test_feedback_on_a_hidden_project_is_absent(
    app: App, channel: grpc.aio.Channel, hidden_world: World
) -> None:
    """DeleteFeedback names feedback, not a project: on a hidden project it is not found, even
    for its author (not the project's owner) once the project was archived."""
    owner, helper, projects = hidden_world
    stub = Stub(channel)
    project = projects["archived-from-ACTIVE"]
    full = await stub.GetProject(
        pb.GetProjectRequest(id=project.id, view=pb.PROJECT_VIEW_FULL), metadata=owner.metadata
    )
    authors = {f.author_id for f in full.recent_feedback}
    assert authors == {str(owner.id), str(helper.id)}
    stranger = await make_user(app, "paid_user")
    md = stranger.metadata
    missing = await expect_error(
        stub.DeleteFeedback(pb.DeleteFeedbackRequest(id=random_id()), metadata=md),
        CODE.NOT_FOUND,
        "FEEDBACK_NOT_FOUND",
    )
    for who in (stranger, helper):
        for feedback in full.recent_feedback:
            request = pb.DeleteFeedbackRequest(id=feedback.id)
            hidden = await expect_error(
                stub.DeleteFeedback(request, metadata=who.metadata), CODE.NOT_FOUND
            )
            assert answer(hidden) == answer(missing)
    sql = "SELECT count(*) FROM feedback WHERE project_id = :id"
    assert await count_rows(app, sql, id=project.id) == 2


async def test_listing_filters_reveal_nothing_hidden(
    app: App, channel: grpc.aio.Channel, hidden_world: World
) -> None:
    owner, _helper, projects = hidden_world
    stub, docs = Stub(channel), Documents(channel)
    stranger = await make_user(app, "paid_user")
    md = stranger.metadata
    for state in (pb.Project.STATE_UNSPECIFIED, DRAFT, ARCHIVED):
        for owner_id in (str(owner.id), random_id()):
            request = pb.ListProjectsRequest(owner_id=owner_id, state=state)
            assert await stub.ListProjects(request, metadata=md) == pb.ListProjectsResponse()
    for project in projects.values():
        for pid in (project.id, random_id()):
            listed = await docs.ListDocuments(dpb.ListDocumentsRequest(project_id=pid), metadata=md)
            assert listed == dpb.ListDocumentsResponse()
