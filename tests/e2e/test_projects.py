"""ProjectService through the real server: a project's life from CreateProject to
DeleteProject, with the validation and etag rules of each step."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2, documents_pb2_grpc
from docgate.v1 import projects_pb2 as pb
from google.protobuf import field_mask_pb2

from docgate.bootstrap import App
from tests.conformance.projects_support import (
    ACTIVE,
    ARCHIVED,
    COMPLETED,
    DRAFT,
    STATES,
    Stub,
    add_feedback,
    change,
    create_project,
    get_project,
    name,
    project_in,
    random_id,
)
from tests.conformance.support import DEADLINE
from tests.support import TestUser, count_rows, error_info, expect_error, make_user

CODE = grpc.StatusCode


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


def _update(stub: Stub, user: TestUser, project: pb.Project, paths: list[str], etag: str = ""):  # type: ignore[no-untyped-def]
    request = pb.UpdateProjectRequest(
        project=project, update_mask=field_mask_pb2.FieldMask(paths=paths), etag=etag
    )
    return stub.UpdateProject(request, metadata=user.metadata, timeout=DEADLINE)


def _delete(stub: Stub, user: TestUser, project_id: str, etag: str = ""):  # type: ignore[no-untyped-def]
    request = pb.DeleteProjectRequest(id=project_id, etag=etag)
    return stub.DeleteProject(request, metadata=user.metadata, timeout=DEADLINE)


async def test_create_starts_in_draft_owned_by_the_caller(app: App, stub: Stub) -> None:
    alice, bob = await make_user(app, "free_user"), await make_user(app)
    created = await create_project(
        stub,
        alice,
        "  Alpha  ",
        description="the first",
        owner_id=str(bob.id),
        state=ACTIVE,
        feedback_count=7,
        average_score=4.0,
        etag='W/"9"',
    )
    assert (created.name, created.description) == ("Alpha", "the first")
    assert (created.state, created.owner_id) == (DRAFT, str(alice.id))
    assert created.etag and created.etag != 'W/"9"'
    assert created.create_time.seconds > 0 and created.update_time == created.create_time
    assert created.feedback_count == 0 and not created.HasField("average_score")
    assert not created.recent_feedback
    assert await get_project(stub, alice, created.id) == created


async def test_request_id_retry_returns_the_first_project(app: App, stub: Stub) -> None:
    alice, bob = await make_user(app), await make_user(app)
    key = random_id()
    first = await create_project(stub, alice, "first", request_id=key)
    await change(stub, alice, "ActivateProject", first.id)
    retry = await create_project(stub, alice, "first", request_id=key)
    # The first project, whatever happened to it since.
    assert (retry.id, retry.name, retry.state) == (first.id, "first", ACTIVE)
    # The key on another request is not a retry (AIP-155; issue 11 finding 5).
    await expect_error(
        create_project(stub, alice, "second", request_id=key),
        CODE.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )
    other = await create_project(stub, bob, "first", request_id=key)  # keys are per caller
    assert other.id != first.id
    sql = "SELECT count(*) FROM projects WHERE request_id = :key"
    assert await count_rows(app, sql, key=key) == 2
    await expect_error(create_project(stub, alice, request_id="nope"), CODE.INVALID_ARGUMENT)


async def test_a_racing_pair_with_one_request_id_makes_one_project(app: App, stub: Stub) -> None:
    for _ in range(5):
        alice, key = await make_user(app), random_id()
        pair = await asyncio.gather(
            *(create_project(stub, alice, "same", request_id=key) for _ in "ab")
        )
        assert pair[0] == pair[1]
        sql = "SELECT count(*) FROM projects WHERE owner_id = :owner"
        assert await count_rows(app, sql, owner=alice.id) == 1


async def test_get_unknown_and_malformed_ids(app: App, stub: Stub) -> None:
    alice = await make_user(app)
    await expect_error(get_project(stub, alice, random_id()), CODE.NOT_FOUND, "PROJECT_NOT_FOUND")
    await expect_error(get_project(stub, alice, "not-a-uuid"), CODE.INVALID_ARGUMENT, "INVALID_ID")


async def test_update_writes_the_masked_fields_under_the_etag(app: App, stub: Stub) -> None:
    alice = await make_user(app)
    project = await create_project(stub, alice, "old", description="old text")
    renamed = await _update(
        stub,
        alice,
        pb.Project(id=project.id, name=" new ", description="x"),
        ["name"],
        project.etag,
    )
    assert (renamed.name, renamed.description, renamed.state) == ("new", "old text", DRAFT)
    assert renamed.etag != project.etag and renamed.update_time.ToDatetime() >= (
        project.update_time.ToDatetime()
    )
    error = await expect_error(
        _update(stub, alice, pb.Project(id=project.id, name="late"), ["name"], project.etag),
        CODE.ABORTED,
        "ETAG_MISMATCH",
    )
    assert error is not None and (await get_project(stub, alice, project.id)) == renamed
    both = await _update(stub, alice, pb.Project(id=project.id, name="n2", description="d2"), ["*"])
    assert (both.name, both.description) == ("n2", "d2")
    await expect_error(
        _update(stub, alice, pb.Project(id=random_id(), name="x"), ["name"]),
        CODE.NOT_FOUND,
        "PROJECT_NOT_FOUND",
    )


@pytest.mark.parametrize("state", STATES, ids=name)
async def test_update_is_allowed_in_every_state_for_owner_and_admin(
    app: App, stub: Stub, admin: TestUser, state: int
) -> None:
    alice, stranger = await make_user(app), await make_user(app, "paid_user")
    project = await project_in(stub, alice, state, archived_from=ACTIVE)
    by_owner = await _update(stub, alice, pb.Project(id=project.id, name="mine"), ["name"])
    by_admin = await _update(
        stub, admin, pb.Project(id=project.id, description="d"), ["description"]
    )
    assert (by_owner.state, by_admin.state, by_admin.name) == (state, state, "mine")
    visible = state in (ACTIVE, COMPLETED)
    await expect_error(
        _update(stub, stranger, pb.Project(id=project.id, name="theirs"), ["name"]),
        CODE.PERMISSION_DENIED if visible else CODE.NOT_FOUND,
        "NOT_PROJECT_OWNER" if visible else "PROJECT_NOT_FOUND",
    )
    assert (await get_project(stub, alice, project.id)).name == "mine"


@pytest.mark.parametrize(
    ("fields", "paths", "field", "reason"),
    [
        ({"name": "x"}, [], "update_mask", "INVALID_UPDATE_MASK"),
        ({"name": "x"}, ["state"], "update_mask", "INVALID_UPDATE_MASK"),
        ({"name": "x"}, ["owner_id"], "update_mask", "INVALID_UPDATE_MASK"),
        ({"name": "x"}, ["name", "etag"], "update_mask", "INVALID_UPDATE_MASK"),
        ({"name": "x"}, ["*", "name"], "update_mask", "INVALID_UPDATE_MASK"),
        ({"name": "   "}, ["name"], "project.name", "INVALID_NAME"),
        ({"name": ""}, ["*"], "project.name", "INVALID_NAME"),
        ({"name": "n" * 256}, ["name"], "project.name", "INVALID_NAME"),
        ({"name": "a\x00b"}, ["name"], "project.name", "INVALID_NAME"),
        (
            {"description": "d" * 10_001},
            ["description"],
            "project.description",
            "INVALID_DESCRIPTION",
        ),
    ],
)
async def test_update_refuses_bad_input(
    app: App, stub: Stub, fields: dict[str, str], paths: list[str], field: str, reason: str
) -> None:
    alice = await make_user(app)
    project = await create_project(stub, alice, "keep")
    error = await expect_error(
        _update(stub, alice, pb.Project(id=project.id, **fields), paths),
        CODE.INVALID_ARGUMENT,
        reason,
    )
    info = error_info(error)
    assert info is not None and info.metadata["field"] == field
    assert await get_project(stub, alice, project.id) == project


async def test_create_validates_like_update(app: App, stub: Stub) -> None:
    alice = await make_user(app)
    edge = await create_project(stub, alice, "n" * 255, description="d" * 10_000)
    assert (len(edge.name), len(edge.description)) == (255, 10_000)
    for fields, reason in (
        ({"project_name": " \t "}, "INVALID_NAME"),
        ({"project_name": "n" * 256}, "INVALID_NAME"),
        ({"description": "d" * 10_001}, "INVALID_DESCRIPTION"),
    ):
        await expect_error(create_project(stub, alice, **fields), CODE.INVALID_ARGUMENT, reason)
    sql = "SELECT count(*) FROM projects WHERE owner_id = :owner"
    assert await count_rows(app, sql, owner=alice.id) == 1


async def test_each_state_change_moves_the_project_and_its_etag(app: App, stub: Stub) -> None:
    alice = await make_user(app)
    project = await create_project(stub, alice)
    for method, state in (
        ("ActivateProject", ACTIVE),
        ("CompleteProject", COMPLETED),
        ("ArchiveProject", ARCHIVED),
        ("RestoreProject", COMPLETED),
    ):
        moved = await change(stub, alice, method, project.id, project.etag)
        assert moved.state == state, method
        assert moved.etag != project.etag
        assert moved.update_time.ToDatetime() >= project.update_time.ToDatetime()
        assert moved.create_time == project.create_time
        assert await get_project(stub, alice, project.id) == moved
        await expect_error(
            change(stub, alice, "ArchiveProject", project.id, project.etag),
            CODE.ABORTED,
            "ETAG_MISMATCH",
        )
        project = moved


@pytest.mark.parametrize("archived_from", [DRAFT, ACTIVE, COMPLETED], ids=name)
async def test_restore_returns_to_the_archived_from_state(
    app: App, stub: Stub, admin: TestUser, archived_from: int
) -> None:
    alice = await make_user(app)
    project = await project_in(stub, alice, ARCHIVED, archived_from=archived_from)
    restored = await change(stub, admin, "RestoreProject", project.id)
    assert restored.state == archived_from
    # And again: the remembered state is the latest one left, not the first.
    if archived_from == ACTIVE:
        await change(stub, alice, "CompleteProject", project.id)
        await change(stub, alice, "ArchiveProject", project.id)
        assert (await change(stub, alice, "RestoreProject", project.id)).state == COMPLETED


@pytest.mark.parametrize("state", STATES, ids=name)
async def test_delete_only_in_draft_or_archived(
    app: App, stub: Stub, admin: TestUser, state: int
) -> None:
    alice = await make_user(app)
    project = await project_in(stub, alice, state, archived_from=COMPLETED)
    sql = "SELECT count(*) FROM projects WHERE id = :id"
    if state in (ACTIVE, COMPLETED):
        error = await expect_error(
            _delete(stub, alice, project.id), CODE.FAILED_PRECONDITION, "PROJECT_NOT_DELETABLE"
        )
        info = error_info(error)
        assert info is not None and info.metadata["state"] == name(state)
        assert await count_rows(app, sql, id=project.id) == 1
        return
    await expect_error(_delete(stub, alice, project.id, 'W/"999"'), CODE.ABORTED, "ETAG_MISMATCH")
    await _delete(stub, alice, project.id, project.etag)
    assert await count_rows(app, sql, id=project.id) == 0
    await expect_error(get_project(stub, admin, project.id), CODE.NOT_FOUND, "PROJECT_NOT_FOUND")
    await expect_error(_delete(stub, alice, project.id), CODE.NOT_FOUND, "PROJECT_NOT_FOUND")


async def test_delete_removes_feedback_and_detaches_documents(
    app: App, stub: Stub, channel: grpc.aio.Channel, admin: TestUser
) -> None:
    alice, bob = await make_user(app), await make_user(app)
    project = await project_in(stub, alice, ACTIVE)
    kept = await project_in(stub, alice, ACTIVE)
    for user, pid in ((alice, project.id), (bob, project.id), (bob, kept.id)):
        await add_feedback(stub, user, pid, score=4)
    documents = documents_pb2_grpc.DocumentServiceStub(channel)
    doc = await documents.CreateDocument(
        documents_pb2.CreateDocumentRequest(
            document=documents_pb2.Document(title="in it", project_id=project.id)
        ),
        metadata=alice.metadata,
    )
    assert doc.project_id == project.id
    await change(stub, alice, "ArchiveProject", project.id)
    await _delete(stub, admin, project.id)
    feedback = "SELECT count(*) FROM feedback WHERE project_id = :id"
    assert await count_rows(app, feedback, id=project.id) == 0
    assert await count_rows(app, feedback, id=kept.id) == 1
    detached = "SELECT count(*) FROM documents WHERE id = :id AND project_id IS NULL"
    assert await count_rows(app, detached, id=doc.id) == 1
    got = await documents.GetDocument(
        documents_pb2.GetDocumentRequest(id=doc.id), metadata=alice.metadata
    )
    assert got.project_id == "" and got.title == "in it"
