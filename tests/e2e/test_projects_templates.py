"""Templates through the real server: admins write them, everyone reads them (lists without
bodies), and CreateDocumentFromTemplate renders one verbatim into a document of the caller."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2, documents_pb2_grpc
from docgate.v1 import projects_pb2 as pb
from google.protobuf import field_mask_pb2

from docgate.bootstrap import App
from tests.conformance.projects_support import ACTIVE, ARCHIVED, DRAFT, Stub, project_in, random_id
from tests.conformance.support import DEADLINE, answer
from tests.support import TestUser, count_rows, error_info, expect_error, make_user, unique

CODE = grpc.StatusCode
BODY = "Dear {{client}},\n{{ amount }} is due. Thanks, {{client}}! {{ Client }} {{a.b}} {{}}"
DOCS_OF = "SELECT count(*) FROM documents WHERE owner_id = :owner"


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


def _slug() -> str:
    return unique("tpl-")


async def _create(stub: Stub, user: TestUser, slug: str, body: str = BODY) -> pb.Template:
    template = pb.Template(name=slug, title="An invoice", description="d", body=body)
    request = pb.CreateTemplateRequest(template=template)
    return await stub.CreateTemplate(request, metadata=user.metadata, timeout=DEADLINE)


def _update(stub: Stub, user: TestUser, template: pb.Template, paths: list[str], etag: str = ""):  # type: ignore[no-untyped-def]
    request = pb.UpdateTemplateRequest(
        template=template, update_mask=field_mask_pb2.FieldMask(paths=paths), etag=etag
    )
    return stub.UpdateTemplate(request, metadata=user.metadata, timeout=DEADLINE)


def _render(stub: Stub, user: TestUser, slug: str, values: dict[str, str], **fields):  # type: ignore[no-untyped-def]
    fields.setdefault("title", "rendered")
    request = pb.CreateDocumentFromTemplateRequest(template=slug, values=values, **fields)
    return stub.CreateDocumentFromTemplate(request, metadata=user.metadata, timeout=DEADLINE)


async def _listed(stub: Stub, user: TestUser) -> list[pb.Template]:
    request, found = pb.ListTemplatesRequest(page_size=2), []
    while True:
        page = await stub.ListTemplates(request, metadata=user.metadata, timeout=DEADLINE)
        found.extend(page.templates)
        if not page.next_page_token:
            return found
        request.page_token = page.next_page_token


async def test_admin_writes_everyone_reads(app: App, stub: Stub, admin: TestUser) -> None:
    reader, slug = await make_user(app, "free_user"), _slug()
    created = await _create(stub, admin, slug)
    assert (created.name, created.title, created.body) == (slug, "An invoice", BODY)
    got = await stub.GetTemplate(pb.GetTemplateRequest(name=slug), metadata=reader.metadata)
    assert got == created
    updated = await _update(
        stub, admin, pb.Template(name=slug, title="Bill", body="new"), ["title"], created.etag
    )
    assert (updated.title, updated.body, updated.id) == ("Bill", BODY, created.id)
    assert updated.etag != created.etag
    await expect_error(
        _update(stub, admin, pb.Template(name=slug, title="x"), ["title"], created.etag),
        CODE.ABORTED,
        "ETAG_MISMATCH",
    )
    everything = await _update(
        stub, admin, pb.Template(name=slug, title="T", description="D", body="{{x}}"), ["*"]
    )
    assert (everything.title, everything.description, everything.body) == ("T", "D", "{{x}}")
    await expect_error(
        _update(stub, admin, pb.Template(name=slug), ["name"]),
        CODE.INVALID_ARGUMENT,
        "INVALID_UPDATE_MASK",
    )
    delete = pb.DeleteTemplateRequest(name=slug, etag=created.etag)
    await expect_error(stub.DeleteTemplate(delete, metadata=admin.metadata), CODE.ABORTED)
    delete.etag = everything.etag
    await stub.DeleteTemplate(delete, metadata=admin.metadata)
    await expect_error(
        stub.GetTemplate(pb.GetTemplateRequest(name=slug), metadata=reader.metadata),
        CODE.NOT_FOUND,
        "TEMPLATE_NOT_FOUND",
    )


async def test_lists_are_ordered_by_name_without_bodies(
    app: App, stub: Stub, admin: TestUser
) -> None:
    reader, prefix = await make_user(app), _slug()
    ours = [f"{prefix}-{suffix}" for suffix in ("c", "a", "b")]
    for slug in ours:
        await _create(stub, admin, slug)
    listed = await _listed(stub, reader)
    names = [t.name for t in listed]
    # Ours differ in their last letter only, so every collation orders them alike.
    assert len(names) == len(set(names))
    assert [n for n in names if n.startswith(prefix)] == sorted(ours)
    assert all(t.body == "" and t.title and t.etag for t in listed)


async def test_templates_are_admin_only_to_write(app: App, stub: Stub, admin: TestUser) -> None:
    slug = _slug()
    created = await _create(stub, admin, slug)
    for roles in ((), ("free_user",), ("paid_user",)):
        user = await make_user(app, *roles)
        calls = [
            _create(stub, user, _slug()),
            _update(stub, user, pb.Template(name=slug, title="x"), ["title"]),
            stub.DeleteTemplate(pb.DeleteTemplateRequest(name=slug), metadata=user.metadata),
        ]
        for call in calls:
            await expect_error(call, CODE.PERMISSION_DENIED, "METHOD_NOT_ALLOWED")
    got = await stub.GetTemplate(pb.GetTemplateRequest(name=slug), metadata=admin.metadata)
    assert got == created


async def test_names_taken_unknown_and_malformed(app: App, stub: Stub, admin: TestUser) -> None:
    slug = _slug()
    await _create(stub, admin, slug)
    await expect_error(_create(stub, admin, slug), CODE.ALREADY_EXISTS, "TEMPLATE_EXISTS")
    missing = _slug()
    for call in (
        stub.GetTemplate(pb.GetTemplateRequest(name=missing), metadata=admin.metadata),
        _update(stub, admin, pb.Template(name=missing, title="x"), ["title"]),
        stub.DeleteTemplate(pb.DeleteTemplateRequest(name=missing), metadata=admin.metadata),
        _render(stub, admin, missing, {}),
    ):
        error = await expect_error(call, CODE.NOT_FOUND, "TEMPLATE_NOT_FOUND")
        info = error_info(error)
        assert info is not None and info.metadata["template"] == missing
    for bad in ("A-b", "a", "1ab", "a_b", "a" * 64):
        await expect_error(
            _create(stub, admin, bad), CODE.INVALID_ARGUMENT, "INVALID_TEMPLATE_NAME"
        )
    large = "x" * (app.settings.max_content_bytes + 1)
    await expect_error(
        _create(stub, admin, _slug(), large), CODE.INVALID_ARGUMENT, "CONTENT_TOO_LARGE"
    )


async def test_render_is_verbatim_and_creates_as_the_caller(
    app: App, stub: Stub, channel: grpc.aio.Channel, admin: TestUser
) -> None:
    slug, bob = _slug(), await make_user(app, "free_user")
    await _create(stub, admin, slug)
    values = {"client": r"{{amount}} \1 $& \g<0>", "amount": "{{client}}"}
    doc = await _render(
        stub, bob, slug, values, title="inv", is_public=True, requires_paid_access=True
    )
    assert doc.content == (
        "Dear {{amount}} \\1 $& \\g<0>,\n{{client}} is due. Thanks, {{amount}} \\1 $& \\g<0>! "
        "{{ Client }} {{a.b}} {{}}"
    )
    assert (doc.title, doc.owner_id, doc.is_public, doc.requires_paid_access, doc.project_id) == (
        "inv",
        str(bob.id),
        True,
        True,
        "",
    )
    documents = documents_pb2_grpc.DocumentServiceStub(channel)
    got = await documents.GetDocument(
        documents_pb2.GetDocumentRequest(id=doc.id), metadata=bob.metadata
    )
    assert got == doc


@pytest.mark.parametrize(
    ("values", "reason", "names"),
    [
        ({"client": "c"}, "MISSING_TEMPLATE_VALUES", "amount"),
        ({}, "MISSING_TEMPLATE_VALUES", "amount,client"),
        (
            {"client": "c", "amount": "1", "zed": "", "extra": "e"},
            "UNKNOWN_TEMPLATE_VALUES",
            "extra,zed",
        ),
        ({"client": "c", "amount": "1", "Client": "C"}, "UNKNOWN_TEMPLATE_VALUES", "Client"),
    ],
)
async def test_missing_and_unknown_values_are_listed(
    app: App, stub: Stub, admin: TestUser, values: dict[str, str], reason: str, names: str
) -> None:
    slug, bob = _slug(), await make_user(app)
    await _create(stub, admin, slug)
    error = await expect_error(_render(stub, bob, slug, values), CODE.INVALID_ARGUMENT, reason)
    info = error_info(error)
    assert info is not None and (info.metadata["field"], info.metadata["names"]) == (
        "values",
        names,
    )
    assert await count_rows(app, DOCS_OF, owner=bob.id) == 0


async def test_the_rendered_body_obeys_the_content_limit(
    app: App, stub: Stub, admin: TestUser
) -> None:
    slug, bob = _slug(), await make_user(app)
    await _create(stub, admin, slug, body="[{{a}}][{{a}}]")
    half = app.settings.max_content_bytes // 2
    fits = await _render(stub, bob, slug, {"a": "x" * (half - 2)})
    assert len(fits.content.encode()) == app.settings.max_content_bytes
    error = await expect_error(
        _render(stub, bob, slug, {"a": "x" * (half - 1)}),
        CODE.INVALID_ARGUMENT,
        "CONTENT_TOO_LARGE",
    )
    info = error_info(error)
    assert info is not None and info.metadata["field"] == "values"
    assert await count_rows(app, DOCS_OF, owner=bob.id) == 1
    await expect_error(
        _render(stub, bob, slug, {"a": "1"}, title=""), CODE.INVALID_ARGUMENT, "INVALID_TITLE"
    )


async def test_render_into_a_project(app: App, stub: Stub, admin: TestUser) -> None:
    slug, owner, stranger = _slug(), await make_user(app), await make_user(app, "paid_user")
    await _create(stub, admin, slug, body="{{x}}")
    active, draft = await project_in(stub, owner, ACTIVE), await project_in(stub, owner, DRAFT)
    archived = await project_in(stub, owner, ARCHIVED, archived_from=ACTIVE)
    assert (
        await _render(stub, owner, slug, {"x": "1"}, project_id=active.id)
    ).project_id == active.id
    assert (
        await _render(stub, admin, slug, {"x": "1"}, project_id=draft.id)
    ).project_id == draft.id
    await expect_error(
        _render(stub, stranger, slug, {"x": "1"}, project_id=active.id),
        CODE.PERMISSION_DENIED,
        "NOT_PROJECT_OWNER",
    )
    absent = answer(
        await expect_error(
            _render(stub, stranger, slug, {"x": "1"}, project_id=random_id()),
            CODE.NOT_FOUND,
            "PROJECT_NOT_FOUND",
        )
    )
    for hidden in (draft, archived):
        error = await expect_error(
            _render(stub, stranger, slug, {"x": "1"}, project_id=hidden.id), CODE.NOT_FOUND
        )
        assert answer(error) == absent
    for caller in (owner, admin):
        error = await expect_error(
            _render(stub, caller, slug, {"x": "1"}, project_id=archived.id),
            CODE.FAILED_PRECONDITION,
            "PROJECT_ARCHIVED",
        )
    await expect_error(
        _render(stub, owner, slug, {"x": "1"}, project_id="p"), CODE.INVALID_ARGUMENT
    )
    assert await count_rows(app, DOCS_OF, owner=stranger.id) == 0
