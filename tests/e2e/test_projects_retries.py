"""request_id (AIP-155) on the creating RPCs that a project or template takes part in: a retry
returns the first result, whatever changed since — the template, the project's state."""

from __future__ import annotations

import asyncio

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
    Stub,
    change,
    project_in,
    random_id,
)
from tests.conformance.support import DEADLINE
from tests.support import TestUser, count_rows, expect_error, make_user, unique

CODE = grpc.StatusCode
DOCS_OF = "SELECT count(*) FROM documents WHERE owner_id = :owner"
Documents = documents_pb2_grpc.DocumentServiceStub


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


@pytest.fixture(scope="module")
def docs(channel: grpc.aio.Channel) -> Documents:
    return Documents(channel)


async def _template(stub: Stub, admin: TestUser, body: str) -> str:
    slug = unique("retry-")
    template = pb.Template(name=slug, title="t", body=body)
    await stub.CreateTemplate(pb.CreateTemplateRequest(template=template), metadata=admin.metadata)
    return slug


def _render(stub: Stub, user: TestUser, request: pb.CreateDocumentFromTemplateRequest):  # type: ignore[no-untyped-def]
    return stub.CreateDocumentFromTemplate(request, metadata=user.metadata, timeout=DEADLINE)


async def test_render_request_id_is_the_create_document_key(
    app: App, stub: Stub, docs: Documents, admin: TestUser
) -> None:
    bob, key = await make_user(app), random_id()
    slug = await _template(stub, admin, "{{x}}")

    def request(x: str) -> pb.CreateDocumentFromTemplateRequest:
        return pb.CreateDocumentFromTemplateRequest(
            template=slug, values={"x": x}, title="t", request_id=key
        )

    first, second = await asyncio.gather(
        _render(stub, bob, request("1")), _render(stub, bob, request("1"))
    )
    assert first == second
    again = await _render(stub, bob, request("1"))
    assert again == first
    # One key, one request (issue 11 finding 5): other values, or a CreateDocument, with the
    # same key are INVALID_ARGUMENT, and nothing is written.
    await expect_error(_render(stub, bob, request("3")), CODE.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
    await expect_error(
        docs.CreateDocument(
            dpb.CreateDocumentRequest(document=dpb.Document(title="other"), request_id=key),
            metadata=bob.metadata,
        ),
        CODE.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )
    assert await count_rows(app, DOCS_OF, owner=bob.id) == 1
    bad = pb.CreateDocumentFromTemplateRequest(
        template=slug, values={"x": "1"}, title="t", request_id="k"
    )
    await expect_error(_render(stub, bob, bad), CODE.INVALID_ARGUMENT, "INVALID_ID")


@pytest.mark.parametrize("what", ["template-updated", "template-deleted", "project-archived"])
async def test_a_render_retry_returns_the_first_document(
    app: App, stub: Stub, admin: TestUser, what: str
) -> None:
    bob, key = await make_user(app), random_id()
    slug = await _template(stub, admin, "Hello {{name}}")
    project = await project_in(stub, bob, ACTIVE)
    request = pb.CreateDocumentFromTemplateRequest(
        template=slug, values={"name": "Ann"}, title="t", project_id=project.id, request_id=key
    )
    first = await _render(stub, bob, request)
    if what == "template-updated":  # the same values no longer fit
        changed = pb.Template(name=slug, body="Hello {{name}} from {{place}}")
        mask = field_mask_pb2.FieldMask(paths=["body"])
        await stub.UpdateTemplate(
            pb.UpdateTemplateRequest(template=changed, update_mask=mask), metadata=admin.metadata
        )
    elif what == "template-deleted":
        await stub.DeleteTemplate(pb.DeleteTemplateRequest(name=slug), metadata=admin.metadata)
    else:
        await change(stub, bob, "ArchiveProject", project.id)
    assert await _render(stub, bob, request) == first
    assert await count_rows(app, DOCS_OF, owner=bob.id) == 1


async def test_a_create_document_retry_returns_the_first_document(
    app: App, stub: Stub, docs: Documents
) -> None:
    bob, key = await make_user(app), random_id()
    project = await project_in(stub, bob, ACTIVE)
    request = dpb.CreateDocumentRequest(
        document=dpb.Document(title="t", project_id=project.id), request_id=key
    )
    first = await docs.CreateDocument(request, metadata=bob.metadata, timeout=DEADLINE)
    await change(stub, bob, "ArchiveProject", project.id)
    assert await docs.CreateDocument(request, metadata=bob.metadata, timeout=DEADLINE) == first
    assert await count_rows(app, DOCS_OF, owner=bob.id) == 1
