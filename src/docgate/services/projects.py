"""docgate.v1.ProjectService: projects and their lifecycle, feedback, templates.

Validate every field, then one unit of work: reads in autocommit, writes in one transaction.
Who may see or change a project is decided below, by the policy the session carries.
"""

from __future__ import annotations

from typing import Any, Final

import grpc.aio
from google.protobuf import empty_pb2

from docgate import templates
from docgate import validation as check
from docgate.config import Settings
from docgate.db.uow import UnitOfWork
from docgate.errors import InvalidArgument
from docgate.policy import ProjectState, StateChange
from docgate.repositories.documents import DocumentRepository, NewDocument
from docgate.repositories.feedback import FeedbackRepository
from docgate.repositories.projects import DEFAULT_ORDER_BY, ORDER_BY, ProjectQuery
from docgate.repositories.projects import ProjectRepository as Projects
from docgate.repositories.templates import TemplateRepository
from docgate.v1 import documents_pb2, projects_pb2, projects_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
Project = projects_pb2.Project

MAX_NAME: Final = 255
MAX_TEXT: Final = 10_000
PROJECT_PATHS: Final = ("name", "description")
TEMPLATE_PATHS: Final = ("title", "description", "body")


def _name(value: str) -> str:
    name = value.strip()
    return check.text(
        name, "project.name", max_length=MAX_NAME, required=True, reason="INVALID_NAME"
    )


def _description(value: str, field: str) -> str:
    return check.text(value, field, max_length=MAX_TEXT, reason="INVALID_DESCRIPTION")


def _state(value: int) -> ProjectState | None:
    """A ListProjects state filter; STATE_UNSPECIFIED does not filter."""
    if value == Project.STATE_UNSPECIFIED:
        return None
    if value not in Project.State.values():
        raise InvalidArgument("state is not a known state", field="state", reason="INVALID_STATE")
    return ProjectState[Project.State.Name(value)]  # type: ignore[arg-type]


class ProjectService(projects_pb2_grpc.ProjectServiceServicer):
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self._uow = uow
        self._max_content_bytes = settings.max_content_bytes

    # --- projects ------------------------------------------------------------------------

    async def CreateProject(
        self, request: projects_pb2.CreateProjectRequest, context: Context
    ) -> Project:
        name = _name(request.project.name)
        description = _description(request.project.description, "project.description")
        request_id = check.optional_id(request.request_id, "request_id")
        digest = check.request_digest(request) if request_id else None
        async with self._uow.transaction() as session:
            return await Projects(session).create(name, description, request_id, digest)

    async def GetProject(
        self, request: projects_pb2.GetProjectRequest, context: Context
    ) -> Project:
        project_id = check.parse_id(request.id)
        full = request.view == projects_pb2.PROJECT_VIEW_FULL
        async with self._uow.read() as session:
            return await Projects(session).get(project_id, full=full)

    async def ListProjects(
        self, request: projects_pb2.ListProjectsRequest, context: Context
    ) -> projects_pb2.ListProjectsResponse:
        query = ProjectQuery(
            page_size=check.page_size(request.page_size),
            page_token=request.page_token,
            order_by=check.order_by(request.order_by, ORDER_BY, DEFAULT_ORDER_BY),
            state=_state(request.state),
            owner_id=check.optional_id(request.owner_id, "owner_id"),
        )
        async with self._uow.read() as session:
            return await Projects(session).list(query)

    async def UpdateProject(
        self, request: projects_pb2.UpdateProjectRequest, context: Context
    ) -> Project:
        project_id = check.parse_id(request.project.id, "project.id")
        paths = check.update_mask(request.update_mask.paths, PROJECT_PATHS, wildcard=True)
        version = check.update_etag(request.etag, request.project.etag, "project")
        changes = {}
        if "name" in paths:
            changes["name"] = _name(request.project.name)
        if "description" in paths:
            changes["description"] = _description(
                request.project.description, "project.description"
            )
        async with self._uow.transaction() as session:
            return await Projects(session).update(project_id, changes, version)

    async def DeleteProject(
        self, request: projects_pb2.DeleteProjectRequest, context: Context
    ) -> empty_pb2.Empty:
        project_id = check.parse_id(request.id)
        version = check.parse_etag(request.etag)
        async with self._uow.transaction() as session:
            await Projects(session).delete(project_id, version)
        return empty_pb2.Empty()

    async def _change_state(self, request: Any, change: StateChange) -> Project:
        project_id = check.parse_id(request.id)
        version = check.parse_etag(request.etag)
        async with self._uow.transaction() as session:
            return await Projects(session).change_state(project_id, change, version)

    async def ActivateProject(
        self, request: projects_pb2.ActivateProjectRequest, context: Context
    ) -> Project:
        return await self._change_state(request, StateChange.ACTIVATE)

    async def CompleteProject(
        self, request: projects_pb2.CompleteProjectRequest, context: Context
    ) -> Project:
        return await self._change_state(request, StateChange.COMPLETE)

    async def ArchiveProject(
        self, request: projects_pb2.ArchiveProjectRequest, context: Context
    ) -> Project:
        return await self._change_state(request, StateChange.ARCHIVE)

    async def RestoreProject(
        self, request: projects_pb2.RestoreProjectRequest, context: Context
    ) -> Project:
        return await self._change_state(request, StateChange.RESTORE)

    # --- feedback ------------------------------------------------------------------------

    async def AddFeedback(
        self, request: projects_pb2.AddFeedbackRequest, context: Context
    ) -> projects_pb2.Feedback:
        project_id = check.parse_id(request.project_id, "project_id")
        content = check.text(
            request.feedback.content,
            "feedback.content",
            max_length=MAX_TEXT,
            required=True,
            reason="INVALID_CONTENT",
        )
        score = None
        if request.feedback.HasField("score"):
            score = check.finite(
                request.feedback.score, "feedback.score", low=1, high=5, reason="INVALID_SCORE"
            )
        async with self._uow.transaction() as session:
            return await FeedbackRepository(session).add(project_id, content, score)

    async def ListFeedback(
        self, request: projects_pb2.ListFeedbackRequest, context: Context
    ) -> projects_pb2.ListFeedbackResponse:
        project_id = check.parse_id(request.project_id, "project_id")
        page_size = check.page_size(request.page_size)
        async with self._uow.read() as session:
            repository = FeedbackRepository(session)
            return await repository.list(project_id, page_size, request.page_token)

    async def DeleteFeedback(
        self, request: projects_pb2.DeleteFeedbackRequest, context: Context
    ) -> empty_pb2.Empty:
        feedback_id = check.parse_id(request.id)
        async with self._uow.transaction() as session:
            await FeedbackRepository(session).delete(feedback_id)
        return empty_pb2.Empty()

    # --- templates -----------------------------------------------------------------------

    def _template_fields(self, template: projects_pb2.Template, paths: Any) -> dict[str, str]:
        values: dict[str, str] = {}
        if "title" in paths:
            values["title"] = check.title(template.title, "template.title")
        if "description" in paths:
            values["description"] = _description(template.description, "template.description")
        if "body" in paths:
            values["body"] = check.content(template.body, self._max_content_bytes, "template.body")
        return values

    async def CreateTemplate(
        self, request: projects_pb2.CreateTemplateRequest, context: Context
    ) -> projects_pb2.Template:
        template = request.template
        name = check.slug(template.name, "template.name", "INVALID_TEMPLATE_NAME")
        values = {"name": name, **self._template_fields(template, TEMPLATE_PATHS)}
        async with self._uow.transaction() as session:
            return await TemplateRepository(session).create(values)

    async def GetTemplate(
        self, request: projects_pb2.GetTemplateRequest, context: Context
    ) -> projects_pb2.Template:
        name = check.slug(request.name, "name", "INVALID_TEMPLATE_NAME")
        async with self._uow.read() as session:
            return await TemplateRepository(session).get(name)

    async def ListTemplates(
        self, request: projects_pb2.ListTemplatesRequest, context: Context
    ) -> projects_pb2.ListTemplatesResponse:
        page_size = check.page_size(request.page_size)
        async with self._uow.read() as session:
            return await TemplateRepository(session).list(page_size, request.page_token)

    async def UpdateTemplate(
        self, request: projects_pb2.UpdateTemplateRequest, context: Context
    ) -> projects_pb2.Template:
        name = check.slug(request.template.name, "template.name", "INVALID_TEMPLATE_NAME")
        paths = check.update_mask(request.update_mask.paths, TEMPLATE_PATHS, wildcard=True)
        version = check.update_etag(request.etag, request.template.etag, "template")
        changes = self._template_fields(request.template, paths)
        async with self._uow.transaction() as session:
            return await TemplateRepository(session).update(name, changes, version)

    async def DeleteTemplate(
        self, request: projects_pb2.DeleteTemplateRequest, context: Context
    ) -> empty_pb2.Empty:
        name = check.slug(request.name, "name", "INVALID_TEMPLATE_NAME")
        version = check.parse_etag(request.etag)
        async with self._uow.transaction() as session:
            await TemplateRepository(session).delete(name, version)
        return empty_pb2.Empty()

    async def CreateDocumentFromTemplate(
        self, request: projects_pb2.CreateDocumentFromTemplateRequest, context: Context
    ) -> documents_pb2.Document:
        name = check.slug(request.template, "template", "INVALID_TEMPLATE_NAME")
        title = check.title(request.title)
        project_id = check.optional_id(request.project_id, "project_id")
        request_id = check.optional_id(request.request_id, "request_id")
        digest = check.request_digest(request) if request_id else None
        async with self._uow.transaction() as session:
            documents = DocumentRepository(session)
            # A retry returns the first document, whatever happened since to the template
            # (changed, deleted) or to the project (archived).
            if request_id is not None and (
                first := await documents.created_with(request_id, digest)
            ):
                return first
            template = await TemplateRepository(session).get(name)
            body = templates.render(template.body, dict(request.values))
            content = check.content(body, self._max_content_bytes, "values")
            if project_id is not None:
                await Projects(session).require_attachable(project_id)
            new = NewDocument(
                title=title,
                content=content,
                is_public=request.is_public,
                requires_paid_access=request.requires_paid_access,
                request_id=request_id,
                project_id=project_id,
                request_hash=digest,
            )
            return await documents.create(new)
