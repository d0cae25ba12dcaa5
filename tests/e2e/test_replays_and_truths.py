"""request_id replays answer only with what the caller may see now and only for the same request
(issue 11 finding 5); update_time moves on every change, and an effective configuration's
expiry belongs to the level it reports (finding 15)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import grpc.aio
from docgate.v1 import documents_pb2 as pb
from docgate.v1 import (
    documents_pb2_grpc,
    projects_pb2,
    projects_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
)
from google.protobuf.timestamp_pb2 import Timestamp

from docgate.bootstrap import App
from tests.support import TestUser, expect_error, make_user, unique


async def test_a_replay_never_returns_a_deleted_document(
    app: App, channel: grpc.aio.Channel
) -> None:
    user = await make_user(app, "free_user")
    stub = documents_pb2_grpc.DocumentServiceStub(channel)
    request = pb.CreateDocumentRequest(
        document=pb.Document(title="once"), request_id=str(uuid.uuid4())
    )
    doc = await stub.CreateDocument(request, metadata=user.metadata)
    await stub.DeleteDocument(pb.DeleteDocumentRequest(id=doc.id), metadata=user.metadata)
    await expect_error(
        stub.CreateDocument(request, metadata=user.metadata),
        grpc.StatusCode.ALREADY_EXISTS,
        "REQUEST_ID_REUSED",
    )


async def test_a_project_request_id_is_for_one_request(app: App, channel: grpc.aio.Channel) -> None:
    user = await make_user(app, "free_user")
    stub = projects_pb2_grpc.ProjectServiceStub(channel)
    request_id = str(uuid.uuid4())
    first = projects_pb2.CreateProjectRequest(
        project=projects_pb2.Project(name="p"), request_id=request_id
    )
    created = await asyncio.gather(
        *(stub.CreateProject(first, metadata=user.metadata) for _ in range(5))
    )
    assert len({p.id for p in created}) == 1
    other = projects_pb2.CreateProjectRequest(
        project=projects_pb2.Project(name="q"), request_id=request_id
    )
    await expect_error(
        stub.CreateProject(other, metadata=user.metadata),
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )


async def test_delete_and_undelete_move_update_time(
    app: App, channel: grpc.aio.Channel, admin: TestUser
) -> None:
    stub = documents_pb2_grpc.DocumentServiceStub(channel)
    doc = await stub.CreateDocument(
        pb.CreateDocumentRequest(document=pb.Document(title="t")), metadata=admin.metadata
    )
    deleted = await stub.DeleteDocument(
        pb.DeleteDocumentRequest(id=doc.id), metadata=admin.metadata
    )
    restored = await stub.UndeleteDocument(
        pb.UndeleteDocumentRequest(id=doc.id), metadata=admin.metadata
    )
    times = [d.update_time.ToDatetime() for d in (doc, deleted, restored)]
    assert times[0] < times[1] < times[2]


async def test_the_effective_level_carries_its_own_expiry(
    app: App, channel: grpc.aio.Channel, admin: TestUser
) -> None:
    """A permanent level 5 and a level 1 expiring in an hour: level 5, never expiring — not
    'level 5, expires in an hour'."""
    roles = roles_pb2_grpc.RoleServiceStub(channel)
    md = admin.metadata
    permanent, brief = unique("r"), unique("r")
    for name in (permanent, brief):
        await roles.CreateRole(roles_pb2.CreateRoleRequest(name=name), metadata=md)
    user = await make_user(app, permanent, brief)
    config = await roles.CreateConfiguration(
        roles_pb2.CreateConfigurationRequest(name=unique("cfg")), metadata=md
    )
    soon = Timestamp()
    soon.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    await roles.GrantConfiguration(
        roles_pb2.GrantConfigurationRequest(
            role=permanent, configuration_id=config.id, access_level=5
        ),
        metadata=md,
    )
    await roles.GrantConfiguration(
        roles_pb2.GrantConfigurationRequest(
            role=brief, configuration_id=config.id, access_level=1, expire_time=soon
        ),
        metadata=md,
    )
    mine = await roles.ListMyConfigurations(
        roles_pb2.ListMyConfigurationsRequest(), metadata=user.metadata
    )
    (effective,) = [c for c in mine.configurations if c.configuration.id == config.id]
    assert effective.access_level == 5
    assert not effective.HasField("expire_time")
