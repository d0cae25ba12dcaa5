"""Helpers for the ProjectService tests (e2e and conformance): projects in a given state,
feedback, raw rows.

The lifecycle used to reach a state is the issue's, spelled out here rather than taken from
docgate.policy: DRAFT → (Activate) ACTIVE → (Complete) COMPLETED, and Archive from any of
them.
"""

from __future__ import annotations

import uuid
from typing import Any

from docgate.v1 import projects_pb2 as pb
from docgate.v1 import projects_pb2_grpc

from tests.conformance.support import DEADLINE
from tests.support import TestUser, unique

Stub = projects_pb2_grpc.ProjectServiceStub
State = pb.Project.State
DRAFT, ACTIVE = pb.Project.DRAFT, pb.Project.ACTIVE
COMPLETED, ARCHIVED = pb.Project.COMPLETED, pb.Project.ARCHIVED
STATES = (DRAFT, ACTIVE, COMPLETED, ARCHIVED)
# The states a stranger may see (the issue: "everyone else sees ACTIVE and COMPLETED").
SHARED = frozenset({ACTIVE, COMPLETED})
STATE_METHODS: dict[str, Any] = {
    "ActivateProject": pb.ActivateProjectRequest,
    "CompleteProject": pb.CompleteProjectRequest,
    "ArchiveProject": pb.ArchiveProjectRequest,
    "RestoreProject": pb.RestoreProjectRequest,
}


def name(state: int) -> str:
    return State.Name(state)


async def create_project(
    stub: Stub, user: TestUser, project_name: str | None = None, request_id: str = "", **fields: Any
) -> pb.Project:
    project = pb.Project(name=project_name or unique("p"), **fields)
    request = pb.CreateProjectRequest(project=project, request_id=request_id)
    return await stub.CreateProject(request, metadata=user.metadata, timeout=DEADLINE)


async def change(
    stub: Stub, user: TestUser, method: str, project_id: str, etag: str = ""
) -> pb.Project:
    request = STATE_METHODS[method](id=project_id, etag=etag)
    result: pb.Project = await getattr(stub, method)(
        request, metadata=user.metadata, timeout=DEADLINE
    )
    return result


async def project_in(
    stub: Stub, user: TestUser, state: int, archived_from: int = DRAFT, **fields: Any
) -> pb.Project:
    """A new project of ``user`` in ``state`` (ARCHIVED: archived from ``archived_from``)."""
    project = await create_project(stub, user, **fields)
    target = archived_from if state == ARCHIVED else state
    if target in (ACTIVE, COMPLETED):
        project = await change(stub, user, "ActivateProject", project.id)
    if target == COMPLETED:
        project = await change(stub, user, "CompleteProject", project.id)
    if state == ARCHIVED:
        project = await change(stub, user, "ArchiveProject", project.id)
    assert project.state == state
    return project


async def add_feedback(
    stub: Stub, user: TestUser, project_id: str, score: float | None = None, content: str = ""
) -> pb.Feedback:
    feedback = pb.Feedback(content=content or unique("f"))
    if score is not None:
        feedback.score = score
    request = pb.AddFeedbackRequest(project_id=project_id, feedback=feedback)
    return await stub.AddFeedback(request, metadata=user.metadata, timeout=DEADLINE)


async def get_project(
    stub: Stub, user: TestUser, project_id: str, full: bool = False
) -> pb.Project:
    view = pb.PROJECT_VIEW_FULL if full else pb.PROJECT_VIEW_UNSPECIFIED
    request = pb.GetProjectRequest(id=project_id, view=view)
    return await stub.GetProject(request, metadata=user.metadata, timeout=DEADLINE)


async def all_feedback(stub: Stub, user: TestUser, project_id: str, size: int = 0) -> list[str]:
    """Every feedback id of the project, page by page."""
    ids: list[str] = []
    request = pb.ListFeedbackRequest(project_id=project_id, page_size=size)
    for _ in range(1000):
        page = await stub.ListFeedback(request, metadata=user.metadata, timeout=DEADLINE)
        ids.extend(f.id for f in page.feedback)
        if not page.next_page_token:
            return ids
        request.page_token = page.next_page_token
    raise AssertionError("pagination did not end")


def random_id() -> str:
    return str(uuid.uuid4())
