"""Documents in projects through the real server: who may put a document in a project (the
project's owner or an admin, and never into an ARCHIVED one), the ListDocuments filter, and
that a project never widens who sees a document."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as dpb
from docgate.v1 import documents_pb2_grpc
from google.protobuf import field_mask_pb2

from docgate.bootstrap import App
from tests.conformance.projects_support import (
    ACTIVE,
    ARCHIVED,
    COMPLETED,
    DRAFT,
    STATES,
    Stub,
    name,
    project_in,
    random_id,
)
from tests.conformance.support import DEADLINE, answer, create
from tests.support import TestUser, count_rows, expect_error, make_user

CODE = grpc.StatusCode
Documents = documents_pb2_grpc.DocumentServiceStub
IN_PROJECT = "SELECT count(*) FROM documents WHERE project_id = :id"


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


@pytest.fixture(scope="module")
def docs(channel: grpc.aio.Channel) -> Documents:
    return Documents(channel)


def _move(docs: Documents, user: TestUser, doc: dpb.Document, project_id: str, etag: str = ""):  # type: ignore[no-untyped-def]
    request = dpb.UpdateDocumentRequest(
        document=dpb.Document(id=doc.id, project_id=project_id),
        update_mask=field_mask_pb2.FieldMask(paths=["project_id"]),
        etag=etag,
    )
    return docs.UpdateDocument(request, metadata=user.metadata, timeout=DEADLINE)


async def _listed(docs: Documents, user: TestUser, project_id: str, size: int = 2) -> list[str]:
    request, ids = dpb.ListDocumentsRequest(project_id=project_id, page_size=size), []
    while True:
        page = await docs.ListDocuments(request, metadata=user.metadata, timeout=DEADLINE)
        ids.extend(d.id for d in page.documents)
        if not page.next_page_token:
            return ids
        request.page_token = page.next_page_token


@pytest.mark.parametrize("state", STATES, ids=name)
async def test_owner_and_admin_may_add_documents_unless_archived(
    app: App, stub: Stub, docs: Documents, admin: TestUser, state: int
) -> None:
    owner = await make_user(app)
    project = await project_in(stub, owner, state, archived_from=ACTIVE)
    for caller in (owner, admin):
        if state == ARCHIVED:
            await expect_error(
                create(docs, caller, project_id=project.id),
                CODE.FAILED_PRECONDITION,
                "PROJECT_ARCHIVED",
            )
            loose = await create(docs, caller)
            await expect_error(
                _move(docs, caller, loose, project.id), CODE.FAILED_PRECONDITION, "PROJECT_ARCHIVED"
            )
        else:
            made = await create(docs, caller, project_id=project.id)
            loose = await create(docs, caller)
            moved = await _move(docs, caller, loose, project.id, loose.etag)
            assert (made.project_id, moved.project_id) == (project.id, project.id)
            out = await _move(docs, caller, moved, "")  # empty: out of the project
            assert out.project_id == ""
    expected = 0 if state == ARCHIVED else 2
    assert await count_rows(app, IN_PROJECT, id=project.id) == expected


@pytest.mark.parametrize("state", STATES, ids=name)
async def test_a_stranger_may_not_use_someone_elses_project(
    app: App, stub: Stub, docs: Documents, state: int
) -> None:
    owner, stranger = await make_user(app), await make_user(app, "paid_user")
    project = await project_in(stub, owner, state, archived_from=COMPLETED)
    own = await create(docs, stranger, is_public=True)
    if state in (ACTIVE, COMPLETED):  # visible, but not theirs to change
        code, reason = CODE.PERMISSION_DENIED, "NOT_PROJECT_OWNER"
        await expect_error(create(docs, stranger, project_id=project.id), code, reason)
        await expect_error(_move(docs, stranger, own, project.id), code, reason)
    else:  # hidden: exactly like a project that does not exist
        for call in (
            lambda pid: create(docs, stranger, project_id=pid),
            lambda pid: _move(docs, stranger, own, pid),
        ):
            absent = answer(await expect_error(call(random_id()), CODE.NOT_FOUND))
            hidden = answer(await expect_error(call(project.id), CODE.NOT_FOUND))
            assert hidden == absent
            assert absent[1] == "project not found"
    assert await count_rows(app, IN_PROJECT, id=project.id) == 0
    for bad in ("nope", "1234"):
        await expect_error(
            create(docs, stranger, project_id=bad), CODE.INVALID_ARGUMENT, "INVALID_ID"
        )


async def test_list_documents_filters_by_project(
    app: App, stub: Stub, docs: Documents, admin: TestUser
) -> None:
    owner = await make_user(app)
    project, other = await project_in(stub, owner, DRAFT), await project_in(stub, owner, DRAFT)
    inside = [(await create(docs, owner, project_id=project.id)).id for _ in range(5)]
    await create(docs, owner, project_id=other.id)
    await create(docs, owner)
    listed = await _listed(docs, owner, project.id)
    assert sorted(listed) == sorted(inside) and len(listed) == 5
    assert sorted(await _listed(docs, admin, project.id, size=50)) == sorted(inside)
    assert await _listed(docs, owner, random_id()) == []
    first = await docs.ListDocuments(
        dpb.ListDocumentsRequest(project_id=project.id, page_size=1), metadata=owner.metadata
    )
    # The page token is bound to the project filter.
    await expect_error(
        docs.ListDocuments(
            dpb.ListDocumentsRequest(project_id=other.id, page_token=first.next_page_token),
            metadata=owner.metadata,
        ),
        CODE.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )


async def test_a_project_never_widens_who_sees_a_document(
    app: App, stub: Stub, docs: Documents, admin: TestUser
) -> None:
    owner = await make_user(app, "paid_user")
    free, paid = await make_user(app, "free_user"), await make_user(app, "paid_user")
    project = await project_in(stub, owner, ACTIVE)  # a project everyone can see
    private = await create(docs, owner, project_id=project.id)
    public = await create(docs, owner, project_id=project.id, is_public=True)
    paid_only = await create(
        docs, owner, project_id=project.id, is_public=True, requires_paid_access=True
    )
    # The admin's private document in the owner's project: not the owner's to see.
    admins = await create(docs, admin, project_id=project.id)
    expected = {
        owner.id: {private.id, public.id, paid_only.id},
        free.id: {public.id},
        paid.id: {public.id, paid_only.id},
        admin.id: {private.id, public.id, paid_only.id, admins.id},
    }
    absent = answer(
        await expect_error(
            docs.GetDocument(dpb.GetDocumentRequest(id=random_id()), metadata=free.metadata),
            CODE.NOT_FOUND,
        )
    )
    for user in (owner, free, paid, admin):
        assert set(await _listed(docs, user, project.id)) == expected[user.id]
        for doc in (private, public, paid_only, admins):
            request = dpb.GetDocumentRequest(id=doc.id)
            if doc.id in expected[user.id]:
                got = await docs.GetDocument(request, metadata=user.metadata)
                assert got.project_id == project.id
            else:
                error = await expect_error(
                    docs.GetDocument(request, metadata=user.metadata), CODE.NOT_FOUND
                )
                assert answer(error) == absent
