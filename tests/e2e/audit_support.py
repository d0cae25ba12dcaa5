"""One scenario per mutating RPC (docgate.audit.WRITES), for the audit trail's proof tests.

Each scenario prepares what its call needs (with calls of its own), then makes the one call
under test with the request id it is given, and returns the resource the entry must name and
the action it must carry.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc.aio
from docgate.v1 import (
    documents_pb2,
    documents_pb2_grpc,
    projects_pb2,
    projects_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import text

from docgate.bootstrap import App
from tests.support import TestUser, make_user, unique


@dataclass(frozen=True)
class World:
    app: App
    channel: grpc.aio.Channel
    admin: TestUser

    @property
    def docs(self) -> documents_pb2_grpc.DocumentServiceStub:
        return documents_pb2_grpc.DocumentServiceStub(self.channel)

    @property
    def roles(self) -> roles_pb2_grpc.RoleServiceStub:
        return roles_pb2_grpc.RoleServiceStub(self.channel)

    @property
    def users(self) -> users_pb2_grpc.UserServiceStub:
        return users_pb2_grpc.UserServiceStub(self.channel)

    @property
    def projects(self) -> projects_pb2_grpc.ProjectServiceStub:
        return projects_pb2_grpc.ProjectServiceStub(self.channel)

    def meta(self, request_id: str | None = None) -> tuple[tuple[str, str], ...]:
        extra = () if request_id is None else (("x-request-id", request_id),)
        return (*self.admin.metadata, *extra)

    async def entries(self, request_id: str) -> list[dict[str, object]]:
        """The audit entries one call left, straight from the table."""
        async with self.app.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT action::text AS action, actor_id, resource, changes, method "
                    "FROM audit_entries WHERE request_id = :rid ORDER BY id"
                ),
                {"rid": request_id},
            )
            return [dict(row._mapping) for row in rows]

    # --- set-up calls (their own entries, other request ids) ------------------------------

    async def document(self) -> documents_pb2.Document:
        doc = documents_pb2.Document(title="audited", content="secret body", is_public=True)
        request = documents_pb2.CreateDocumentRequest(document=doc)
        return await self.docs.CreateDocument(request, metadata=self.meta())

    async def role(self) -> str:
        name = unique("r")
        await self.roles.CreateRole(roles_pb2.CreateRoleRequest(name=name), metadata=self.meta())
        return name

    async def configuration(self) -> str:
        request = roles_pb2.CreateConfigurationRequest(name=unique("c"))
        return (await self.roles.CreateConfiguration(request, metadata=self.meta())).id

    async def project(self, *transitions: str) -> projects_pb2.Project:
        request = projects_pb2.CreateProjectRequest(project=projects_pb2.Project(name="p"))
        project = await self.projects.CreateProject(request, metadata=self.meta())
        for name in transitions:
            call = getattr(self.projects, name)
            request_type = getattr(projects_pb2, f"{name}Request")
            project = await call(request_type(id=project.id), metadata=self.meta())
        return project

    async def template(self) -> str:
        name = unique("t")
        template = projects_pb2.Template(name=name, title="T", body="Hello {{name}}")
        request = projects_pb2.CreateTemplateRequest(template=template)
        await self.projects.CreateTemplate(request, metadata=self.meta())
        return name


Expected = tuple[str, str | None]  # resource, action (None: the method's default)
Scenario = Callable[[World, str], Awaitable[Expected]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(method: str) -> Callable[[Scenario], Scenario]:
    def register(fn: Scenario) -> Scenario:
        SCENARIOS[method] = fn
        return fn

    return register


_D, _R, _U, _P = (
    "/docgate.v1.DocumentService/",
    "/docgate.v1.RoleService/",
    "/docgate.v1.UserService/",
    "/docgate.v1.ProjectService/",
)


@scenario(_D + "CreateDocument")
async def _create_document(w: World, rid: str) -> Expected:
    doc = documents_pb2.Document(title="t", content="never in the trail")
    request = documents_pb2.CreateDocumentRequest(document=doc)
    reply = await w.docs.CreateDocument(request, metadata=w.meta(rid))
    return f"documents/{reply.id}", None


@scenario(_D + "UpdateDocument")
async def _update_document(w: World, rid: str) -> Expected:
    doc = await w.document()
    change = documents_pb2.Document(id=doc.id, title="renamed", content="new secret")
    mask = FieldMask(paths=["title", "content"])
    request = documents_pb2.UpdateDocumentRequest(document=change, update_mask=mask)
    await w.docs.UpdateDocument(request, metadata=w.meta(rid))
    return f"documents/{doc.id}", None


@scenario(_D + "DeleteDocument")
async def _delete_document(w: World, rid: str) -> Expected:
    doc = await w.document()
    await w.docs.DeleteDocument(
        documents_pb2.DeleteDocumentRequest(id=doc.id), metadata=w.meta(rid)
    )
    return f"documents/{doc.id}", None


@scenario(_D + "UndeleteDocument")
async def _undelete_document(w: World, rid: str) -> Expected:
    doc = await w.document()
    await w.docs.DeleteDocument(documents_pb2.DeleteDocumentRequest(id=doc.id), metadata=w.meta())
    request = documents_pb2.UndeleteDocumentRequest(id=doc.id)
    await w.docs.UndeleteDocument(request, metadata=w.meta(rid))
    return f"documents/{doc.id}", None


@scenario(_D + "PurgeDocument")
async def _purge_document(w: World, rid: str) -> Expected:
    doc = await w.document()
    await w.docs.PurgeDocument(documents_pb2.PurgeDocumentRequest(id=doc.id), metadata=w.meta(rid))
    return f"documents/{doc.id}", None


@scenario(_R + "CreateRole")
async def _create_role(w: World, rid: str) -> Expected:
    name = unique("r")
    await w.roles.CreateRole(roles_pb2.CreateRoleRequest(name=name), metadata=w.meta(rid))
    return f"roles/{name}", None


@scenario(_R + "UpdateRole")
async def _update_role(w: World, rid: str) -> Expected:
    name = await w.role()
    request = roles_pb2.UpdateRoleRequest(
        role=roles_pb2.Role(name=name, description="d"),
        update_mask=FieldMask(paths=["description"]),
    )
    await w.roles.UpdateRole(request, metadata=w.meta(rid))
    return f"roles/{name}", None


@scenario(_R + "DeleteRole")
async def _delete_role(w: World, rid: str) -> Expected:
    name = await w.role()
    await w.roles.DeleteRole(roles_pb2.DeleteRoleRequest(name=name), metadata=w.meta(rid))
    return f"roles/{name}", None


@scenario(_R + "AssignRole")
async def _assign_role(w: World, rid: str) -> Expected:
    user, role = await make_user(w.app), await w.role()
    request = roles_pb2.AssignRoleRequest(user_id=str(user.id), role=role)
    await w.roles.AssignRole(request, metadata=w.meta(rid))
    return f"users/{user.id}/roles/{role}", None


@scenario(_R + "RevokeRole")
async def _revoke_role(w: World, rid: str) -> Expected:
    user, role = await make_user(w.app), await w.role()
    assign = roles_pb2.AssignRoleRequest(user_id=str(user.id), role=role)
    await w.roles.AssignRole(assign, metadata=w.meta())
    request = roles_pb2.RevokeRoleRequest(user_id=str(user.id), role=role)
    await w.roles.RevokeRole(request, metadata=w.meta(rid))
    return f"users/{user.id}/roles/{role}", None


@scenario(_R + "CreateConfiguration")
async def _create_configuration(w: World, rid: str) -> Expected:
    request = roles_pb2.CreateConfigurationRequest(name=unique("c"))
    reply = await w.roles.CreateConfiguration(request, metadata=w.meta(rid))
    return f"configurations/{reply.id}", None


@scenario(_R + "DeleteConfiguration")
async def _delete_configuration(w: World, rid: str) -> Expected:
    cid = await w.configuration()
    request = roles_pb2.DeleteConfigurationRequest(id=cid)
    await w.roles.DeleteConfiguration(request, metadata=w.meta(rid))
    return f"configurations/{cid}", None


@scenario(_R + "GrantConfiguration")
async def _grant(w: World, rid: str) -> Expected:
    role, cid = await w.role(), await w.configuration()
    request = roles_pb2.GrantConfigurationRequest(role=role, configuration_id=cid, access_level=2)
    await w.roles.GrantConfiguration(request, metadata=w.meta(rid))
    return f"roles/{role}/configurations/{cid}", None


@scenario(_R + "RevokeConfiguration")
async def _revoke_grant(w: World, rid: str) -> Expected:
    role, cid = await w.role(), await w.configuration()
    grant = roles_pb2.GrantConfigurationRequest(role=role, configuration_id=cid, access_level=1)
    await w.roles.GrantConfiguration(grant, metadata=w.meta())
    request = roles_pb2.RevokeConfigurationRequest(role=role, configuration_id=cid)
    await w.roles.RevokeConfiguration(request, metadata=w.meta(rid))
    return f"roles/{role}/configurations/{cid}", None


@scenario(_U + "CreateUser")
async def _create_user(w: World, rid: str) -> Expected:
    name = unique()
    request = users_pb2.CreateUserRequest(username=name, email=f"{name}@example.com")
    reply = await w.users.CreateUser(request, metadata=w.meta(rid))
    return f"users/{reply.id}", None


@scenario(_U + "UpdateUser")
async def _deactivate_user(w: World, rid: str) -> Expected:
    user = await make_user(w.app)
    request = users_pb2.UpdateUserRequest(
        user=users_pb2.User(id=str(user.id), is_active=False),
        update_mask=FieldMask(paths=["is_active"]),
    )
    await w.users.UpdateUser(request, metadata=w.meta(rid))
    return f"users/{user.id}", "USER_DEACTIVATED"


@scenario(_U + "DeleteUser")
async def _delete_user(w: World, rid: str) -> Expected:
    user = await make_user(w.app)
    await w.users.DeleteUser(users_pb2.DeleteUserRequest(id=str(user.id)), metadata=w.meta(rid))
    return f"users/{user.id}", None


@scenario(_P + "CreateProject")
async def _create_project(w: World, rid: str) -> Expected:
    request = projects_pb2.CreateProjectRequest(project=projects_pb2.Project(name="p"))
    reply = await w.projects.CreateProject(request, metadata=w.meta(rid))
    return f"projects/{reply.id}", None


@scenario(_P + "UpdateProject")
async def _update_project(w: World, rid: str) -> Expected:
    project = await w.project()
    request = projects_pb2.UpdateProjectRequest(
        project=projects_pb2.Project(id=project.id, name="renamed"),
        update_mask=FieldMask(paths=["name"]),
    )
    await w.projects.UpdateProject(request, metadata=w.meta(rid))
    return f"projects/{project.id}", None


@scenario(_P + "DeleteProject")
async def _delete_project(w: World, rid: str) -> Expected:
    project = await w.project()
    request = projects_pb2.DeleteProjectRequest(id=project.id)
    await w.projects.DeleteProject(request, metadata=w.meta(rid))
    return f"projects/{project.id}", None


def _state_change(method: str, *before: str) -> None:
    async def run(w: World, rid: str) -> Expected:
        project = await w.project(*before)
        call = getattr(w.projects, method)
        await call(getattr(projects_pb2, f"{method}Request")(id=project.id), metadata=w.meta(rid))
        return f"projects/{project.id}", None

    SCENARIOS[_P + method] = run


_state_change("ActivateProject")
_state_change("CompleteProject", "ActivateProject")
_state_change("ArchiveProject")
_state_change("RestoreProject", "ArchiveProject")


async def _feedback(w: World, rid: str | None) -> tuple[str, str]:
    project = await w.project("ActivateProject")
    feedback = projects_pb2.Feedback(content="private words", score=4)
    request = projects_pb2.AddFeedbackRequest(project_id=project.id, feedback=feedback)
    reply = await w.projects.AddFeedback(request, metadata=w.meta(rid))
    return project.id, reply.id


@scenario(_P + "AddFeedback")
async def _add_feedback(w: World, rid: str) -> Expected:
    project_id, feedback_id = await _feedback(w, rid)
    return f"projects/{project_id}/feedback/{feedback_id}", None


@scenario(_P + "DeleteFeedback")
async def _delete_feedback(w: World, rid: str) -> Expected:
    _, feedback_id = await _feedback(w, None)
    request = projects_pb2.DeleteFeedbackRequest(id=feedback_id)
    await w.projects.DeleteFeedback(request, metadata=w.meta(rid))
    return f"feedback/{feedback_id}", None


@scenario(_P + "CreateTemplate")
async def _create_template(w: World, rid: str) -> Expected:
    name = unique("t")
    request = projects_pb2.CreateTemplateRequest(
        template=projects_pb2.Template(name=name, title="T", body="b")
    )
    await w.projects.CreateTemplate(request, metadata=w.meta(rid))
    return f"templates/{name}", None


@scenario(_P + "UpdateTemplate")
async def _update_template(w: World, rid: str) -> Expected:
    name = await w.template()
    request = projects_pb2.UpdateTemplateRequest(
        template=projects_pb2.Template(name=name, title="T2"),
        update_mask=FieldMask(paths=["title"]),
    )
    await w.projects.UpdateTemplate(request, metadata=w.meta(rid))
    return f"templates/{name}", None


@scenario(_P + "DeleteTemplate")
async def _delete_template(w: World, rid: str) -> Expected:
    name = await w.template()
    request = projects_pb2.DeleteTemplateRequest(name=name)
    await w.projects.DeleteTemplate(request, metadata=w.meta(rid))
    return f"templates/{name}", None


@scenario(_P + "CreateDocumentFromTemplate")
async def _render(w: World, rid: str) -> Expected:
    name = await w.template()
    request = projects_pb2.CreateDocumentFromTemplateRequest(
        template=name, title="rendered", values={"name": "x"}
    )
    reply = await w.projects.CreateDocumentFromTemplate(request, metadata=w.meta(rid))
    return f"documents/{reply.id}", None


def new_request_id() -> str:
    return uuid.uuid4().hex
