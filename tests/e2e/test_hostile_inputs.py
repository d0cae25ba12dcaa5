"""An authenticated caller with ordinary rights, sending what a client library never would
(issue 11): forged page tokens, malformed bytes, blank titles, conflicting etags, a role filter
that would reveal membership. Each answer is a clear status, never INTERNAL or UNKNOWN."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import grpc
import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb
from docgate.v1 import documents_pb2_grpc, projects_pb2, roles_pb2, users_pb2
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2

from docgate.bootstrap import App
from tests.support import TestUser, expect_error, make_user

LISTS = [
    ("/docgate.v1.DocumentService/ListDocuments", pb.ListDocumentsRequest, {}),
    ("/docgate.v1.DocumentService/SearchDocuments", pb.SearchDocumentsRequest, {"query": "x"}),
    ("/docgate.v1.RoleService/ListRoles", roles_pb2.ListRolesRequest, {}),
    (
        "/docgate.v1.RoleService/ListRoleMembers",
        roles_pb2.ListRoleMembersRequest,
        {"role": "admin"},
    ),
    ("/docgate.v1.RoleService/ListConfigurations", roles_pb2.ListConfigurationsRequest, {}),
    ("/docgate.v1.UserService/ListUsers", users_pb2.ListUsersRequest, {}),
    ("/docgate.v1.ProjectService/ListProjects", projects_pb2.ListProjectsRequest, {}),
    ("/docgate.v1.ProjectService/ListTemplates", projects_pb2.ListTemplatesRequest, {}),
]


def _forged(sort_key: list[object]) -> str:
    """What anyone could mint before tokens were keyed: an unkeyed BLAKE2b checksum over a
    well-formed body (both the old and the current version number)."""
    body = json.dumps([1, "any", sort_key]).encode()
    checksum = hashlib.blake2b(body, digest_size=8, person=b"docgate-page").digest()
    return base64.urlsafe_b64encode(checksum + body).decode().rstrip("=")


def _raw(channel: grpc.aio.Channel, path: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(
        path, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )


@pytest.mark.parametrize(
    "sort_key",
    [[10**400, str(uuid.uuid4())], ["a\x00b", "not-a-uuid"], ["\ud800"], [[[[[]]]]]],
    ids=["huge-int", "nul", "lone-surrogate", "deep-list"],
)
@pytest.mark.parametrize(("path", "request_type", "fields"), LISTS, ids=[p for p, _, _ in LISTS])
async def test_forged_page_tokens_are_invalid_argument_on_every_list(
    app: App,
    channel: grpc.aio.Channel,
    admin: TestUser,
    path: str,
    request_type: type,
    fields: dict[str, str],
    sort_key: list[object],
) -> None:
    request = request_type(page_token=_forged(sort_key), **fields)
    await expect_error(
        _raw(channel, path)(request.SerializeToString(), metadata=admin.metadata, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )


@pytest.mark.parametrize(
    "path",
    [
        "/docgate.v1.DocumentService/GetDocument",
        "/docgate.v1.DocumentService/CreateDocument",
        "/docgate.v1.ProjectService/ListProjects",
        "/grpc.health.v1.Health/Check",
    ],
)
@pytest.mark.parametrize("authenticated", [False, True])
async def test_malformed_request_bytes_are_invalid_argument(
    channel: grpc.aio.Channel, admin: TestUser, path: str, authenticated: bool
) -> None:
    garbage = b"\xff\xff\xff\xff\x0f\x08"  # a truncated varint: not a message of any type
    metadata = admin.metadata if authenticated else ()
    error = await expect_error(
        _raw(channel, path)(garbage, metadata=metadata, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "MALFORMED_REQUEST",
    )
    assert "Error" not in (error.details() or "")  # no Python exception text


async def test_health_list_answers_not_internal(channel: grpc.aio.Channel) -> None:
    call = _raw(channel, "/grpc.health.v1.Health/List")
    reply = health_pb2.HealthListResponse.FromString(
        await call(health_pb2.HealthListRequest().SerializeToString(), timeout=10)
    )
    assert "docgate.v1.DocumentService" in reply.statuses


@pytest.mark.parametrize("title", [" ", "\t\n", "   \u3000"])
async def test_blank_titles_are_refused(app: App, channel: grpc.aio.Channel, title: str) -> None:
    user = await make_user(app, "free_user")
    stub = documents_pb2_grpc.DocumentServiceStub(channel)
    request = pb.CreateDocumentRequest(document=pb.Document(title=title))
    await expect_error(
        stub.CreateDocument(request, metadata=user.metadata),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_TITLE",
    )
    ok = await stub.CreateDocument(
        pb.CreateDocumentRequest(document=pb.Document(title="  padded  ")),
        metadata=user.metadata,
    )
    assert ok.title == "padded"


async def test_the_resources_own_etag_is_honoured(app: App, channel: grpc.aio.Channel) -> None:
    user = await make_user(app, "free_user")
    stub = documents_pb2_grpc.DocumentServiceStub(channel)
    doc = await stub.CreateDocument(
        pb.CreateDocumentRequest(document=pb.Document(title="v1")), metadata=user.metadata
    )
    mask = field_mask_pb2.FieldMask(paths=["title"])
    fresh = await stub.UpdateDocument(
        pb.UpdateDocumentRequest(document=pb.Document(id=doc.id, title="v2", etag=doc.etag),
                                 update_mask=mask),
        metadata=user.metadata,
    )  # fmt: skip
    stale = pb.UpdateDocumentRequest(
        document=pb.Document(id=doc.id, title="v3", etag=doc.etag), update_mask=mask
    )
    await expect_error(
        stub.UpdateDocument(stale, metadata=user.metadata), grpc.StatusCode.ABORTED, "ETAG_MISMATCH"
    )
    both = pb.UpdateDocumentRequest(
        document=pb.Document(id=doc.id, title="v3", etag=fresh.etag),
        update_mask=mask,
        etag=doc.etag,
    )
    await expect_error(
        stub.UpdateDocument(both, metadata=user.metadata),
        grpc.StatusCode.INVALID_ARGUMENT,
        "CONFLICTING_ETAGS",
    )
    got = await stub.GetDocument(pb.GetDocumentRequest(id=doc.id), metadata=user.metadata)
    assert got.title == "v2"


async def test_owner_role_names_only_a_role_the_caller_holds(
    app: App, channel: grpc.aio.Channel
) -> None:
    user = await make_user(app, "free_user")
    stub = documents_pb2_grpc.DocumentServiceStub(channel)
    await expect_error(
        stub.ListDocuments(pb.ListDocumentsRequest(owner_role="admin"), metadata=user.metadata),
        grpc.StatusCode.PERMISSION_DENIED,
        "OWNER_ROLE_NOT_HELD",
    )
    own = await stub.ListDocuments(
        pb.ListDocumentsRequest(owner_role="free_user", page_size=1), metadata=user.metadata
    )
    assert len(own.documents) <= 1
