"""A small world seeded through the public API, for the fuzz and log tests: users of every role,
documents of every visibility, projects in every state with feedback, roles, configurations,
grants and templates. `World.vocabulary` turns it into a `tests.fuzzing.Vocabulary` (real ids,
names, etags and page tokens from real first pages) so that fuzzed calls sometimes get past
validation and reach the database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
from docgate.v1 import (
    documents_pb2,
    documents_pb2_grpc,
    projects_pb2,
    projects_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
)
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from docgate import validation
from docgate.bootstrap import App
from docgate.repositories.principals import load_principal
from tests.fuzzing import Vocabulary, huge_strings, weighted
from tests.support import TestUser, make_user, served_bindings, unique

DEADLINE = 10.0
# Every order_by the proto comments name (case and spacing are not significant).
DOCUMENT_ORDER_BYS = ("create_time desc", "create_time", "update_time desc", "title", " TITLE ")
PROJECT_ORDER_BYS = ("create_time desc", "name", "average_score desc", "Average_Score  DESC")
PLACEHOLDERS = ("name", "place", "when")
BODY = "Dear {{name}}, see you at {{ place }} on {{when}}. {{name}}!"
WORDS = ("quarterly", "budget", "giraffe", "zephyr", "ledger", "orchid")


@dataclass
class World:
    users: dict[str, TestUser] = field(default_factory=dict)
    values: dict[str, list[str]] = field(default_factory=dict)
    roles: dict[str, frozenset[str] | None] = field(default_factory=dict)

    async def intact(self, app: App) -> bool:
        """Whether every seeded user is still there, active, with the roles it had when the
        world was seeded (an admin's fuzzed calls may delete, deactivate or demote them)."""
        return await _roles_of(app, self.users.values()) == self.roles

    def add(self, key: str, *values: str) -> None:
        self.values.setdefault(key, []).extend(v for v in values if v)

    def vocabulary(self) -> Vocabulary:
        values = {key: list(dict.fromkeys(vs)) for key, vs in self.values.items()}
        patterns = {
            "username": st.from_regex(validation.USERNAME_RE, fullmatch=True),
            "email": st.emails(),
            "role": st.from_regex(validation.ROLE_NAME_RE, fullmatch=True),
            "roles": st.from_regex(validation.ROLE_NAME_RE, fullmatch=True),
            "name": st.one_of(
                st.from_regex(validation.ROLE_NAME_RE, fullmatch=True),
                st.from_regex(validation.SLUG_RE, fullmatch=True),
                st.text(min_size=1, max_size=30),
            ),
            "template": st.from_regex(validation.SLUG_RE, fullmatch=True),
            "title": st.text(min_size=1, max_size=30),
            # Now and then content at the size limit, or distinct words within it (finding 2).
            "content": weighted((8, st.text(max_size=200)), (1, huge_strings())),
            "body": st.text(max_size=100).map(lambda t: t + BODY),
            "description": st.text(max_size=200),
            "query": st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
            "etag": st.integers(1, 12).map(lambda n: f'W/"{n}"'),
            # CreateDocumentFromTemplate: exactly the seeded templates' placeholders.
            "values": st.fixed_dictionaries({k: st.text(max_size=20) for k in PLACEHOLDERS}),
            "score": st.floats(1, 5),
            "access_level": st.integers(1, 10),
            "page_size": st.integers(0, 600),
            "request_id": st.uuids().map(str),
        }
        return Vocabulary(values=values, patterns=patterns)


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


async def seed(app: App, channel: grpc.aio.Channel, page_tokens: Iterable[str] = ()) -> World:
    """Seed a fresh world (unique names, so several worlds share a database). Page tokens are
    collected from real first pages unless given: any token the server issued stays valid in
    a later world (it carries a sort key and the query it belongs to, not the rows)."""
    world = World()
    for kind, roles in {
        "admin": ("admin",),
        "free": ("free_user",),
        "paid": ("paid_user", "free_user"),
        "nobody": (),
    }.items():
        user = await make_user(app, *roles)
        world.users[kind] = user
        world.add("id", str(user.id))
        world.add("User.id", str(user.id))
        world.add("user_id", str(user.id))
        world.add("username", user.username)
        world.add("email", f"{user.username}@example.com")
    await _documents(world, channel)
    await _roles(world, channel)
    await _projects(world, channel)
    world.add("page_token", *page_tokens)
    if not world.values.get("page_token"):
        await _page_tokens(world, channel)
    world.roles = await _roles_of(app, world.users.values())
    return world


async def _roles_of(app: App, users: Iterable[TestUser]) -> dict[str, frozenset[str] | None]:
    """Each user's roles, or None when the user is gone or deactivated."""
    async with app.engine.connect() as conn:
        principals = {user.username: await load_principal(conn, user.id) for user in users}
    return {name: p.roles if p else None for name, p in principals.items()}


def _call(world: World, who: str) -> dict[str, Any]:
    return {"metadata": world.users[who].metadata, "timeout": DEADLINE}


async def _documents(world: World, channel: grpc.aio.Channel) -> None:
    docs = documents_pb2_grpc.DocumentServiceStub(channel)
    for who, public, paid, deleted in (
        ("free", False, False, False),
        ("free", True, False, False),
        ("paid", True, True, False),
        ("paid", False, False, False),
        ("admin", True, False, False),
        ("admin", True, False, True),
    ):
        words = " ".join(WORDS[: 2 + len(world.values.get("ids", []))])
        document = documents_pb2.Document(
            title=unique("Doc "), content=words, is_public=public, requires_paid_access=paid
        )
        request = documents_pb2.CreateDocumentRequest(document=document)
        made = await docs.CreateDocument(request, **_call(world, who))
        if deleted:
            delete = documents_pb2.DeleteDocumentRequest(id=made.id)
            made = await docs.DeleteDocument(delete, **_call(world, who))
        world.add("id", made.id)
        world.add("Document.id", made.id)
        world.add("ids", made.id)
        world.add("etag", made.etag)
        world.add("title", made.title)


async def _roles(world: World, channel: grpc.aio.Channel) -> None:
    roles = roles_pb2_grpc.RoleServiceStub(channel)
    admin = _call(world, "admin")
    world.add("role", "admin", "paid_user", "free_user")
    world.add("owner_role", "admin", "paid_user", "free_user")
    world.add("roles", "paid_user", "free_user")
    for _ in range(2):
        role = await roles.CreateRole(roles_pb2.CreateRoleRequest(name=unique("fz")), **admin)
        world.add("role", role.name)
        world.add("roles", role.name)
        world.add("Role.name", role.name)
        assign = roles_pb2.AssignRoleRequest(user_id=str(world.users["nobody"].id), role=role.name)
        await roles.AssignRole(assign, **admin)
    custom = world.values["role"][-1]
    soon = datetime.now(UTC) + timedelta(hours=1)
    for role, expire in ((custom, None), ("free_user", soon), ("paid_user", None)):
        config = await roles.CreateConfiguration(
            roles_pb2.CreateConfigurationRequest(name=unique("cfg "), description="seeded"),
            **admin,
        )
        world.add("id", config.id)
        world.add("Configuration.id", config.id)
        world.add("configuration_id", config.id)
        world.add("Configuration.name", config.name)
        grant = roles_pb2.GrantConfigurationRequest(
            role=role, configuration_id=config.id, access_level=3
        )
        if expire is not None:
            grant.expire_time.CopyFrom(_ts(expire))
        await roles.GrantConfiguration(grant, **admin)


async def _projects(world: World, channel: grpc.aio.Channel) -> None:
    projects = projects_pb2_grpc.ProjectServiceStub(channel)
    transitions = {
        "draft": (),
        "active": ("ActivateProject",),
        "completed": ("ActivateProject", "CompleteProject"),
        "archived": ("ArchiveProject",),
    }
    for state, steps in transitions.items():
        for who in ("free", "admin"):
            project = projects_pb2.Project(name=unique(f"{state} "), description="seeded")
            request = projects_pb2.CreateProjectRequest(project=project)
            made = await projects.CreateProject(request, **_call(world, who))
            for step in steps:
                change = getattr(projects_pb2, f"{step}Request")(id=made.id)
                made = await getattr(projects, step)(change, **_call(world, who))
            world.add("id", made.id)
            world.add("Project.id", made.id)
            world.add("project_id", made.id)
            world.add("etag", made.etag)
            world.add("Project.name", made.name)
            if state == "active":
                for author, score in (("free", 4.5), ("paid", None), ("admin", 1.0)):
                    feedback = projects_pb2.Feedback(content=unique("feedback "))
                    if score is not None:
                        feedback.score = score
                    add = projects_pb2.AddFeedbackRequest(project_id=made.id, feedback=feedback)
                    item = await projects.AddFeedback(add, **_call(world, author))
                    world.add("id", item.id)
                    world.add("Feedback.id", item.id)
    admin = _call(world, "admin")
    for _ in range(2):
        template = projects_pb2.Template(
            name=unique("fz-"), title="Seeded template", description="seeded", body=BODY
        )
        made_t = await projects.CreateTemplate(
            projects_pb2.CreateTemplateRequest(template=template), **admin
        )
        world.add("template", made_t.name)
        world.add("Template.name", made_t.name)
        world.add("etag", made_t.etag)
    world.add("values[key]", *PLACEHOLDERS)
    world.add("Document.order_by", *DOCUMENT_ORDER_BYS)
    world.add("Project.order_by", *PROJECT_ORDER_BYS)
    world.add("query", *WORDS)


def _list_methods() -> list[MethodDescriptor]:
    return [
        method
        for binding in served_bindings()
        for method in binding.descriptor.methods
        if {"page_size", "page_token"} <= set(method.input_type.fields_by_name)
    ]


async def _page_tokens(world: World, channel: grpc.aio.Channel) -> None:
    """next_page_token of a real first page (page_size 1) of every List RPC, as each kind of
    caller, unfiltered and with each seeded value of each filter field."""
    for method in _list_methods():
        cls = message_factory.GetMessageClass(method.input_type)
        stub = channel.unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message_factory.GetMessageClass(method.output_type).FromString,
        )
        requests: list[Any] = [cls(page_size=1)]
        for f in method.input_type.fields:
            if f.type == f.TYPE_STRING and f.name != "page_token":
                for value in _seeded(world, method.input_type.name, f.name)[:3]:
                    requests.append(cls(page_size=1, **{f.name: value}))
        for who in ("free", "paid", "admin"):
            for request in requests:
                try:
                    page = await stub(request, **_call(world, who))
                except grpc.aio.AioRpcError:
                    continue
                world.add("page_token", page.next_page_token)


def _seeded(world: World, message: str, name: str) -> list[str]:
    """The seeded values for field ``name`` of ``message`` (see tests.fuzzing.Vocabulary)."""
    values = list(world.values.get(name, []))
    for key, more in world.values.items():
        resource, _, field_name = key.partition(".")
        if field_name == name and resource in message:
            values = more + values
    return values
