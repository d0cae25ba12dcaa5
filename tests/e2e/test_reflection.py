"""Reflection as clients use it: grpcurl describe shows the proto comments and finds methods;
a plain gRPC client gets the same answers from grpc.reflection.v1 and v1alpha."""

from __future__ import annotations

import json

import grpc
import grpc.aio
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha.reflection_pb2 import (
    ServerReflectionRequest,
    ServerReflectionResponse,
)

from docgate.server import RunningServer
from tests.support import TestUser, grpcurl

DEADLINE = 10.0
REFLECTION_SERVICES = {
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}
SERVED = {
    "docgate.v1.DocumentService", "docgate.v1.RoleService", "docgate.v1.UserService",
    "grpc.health.v1.Health", *REFLECTION_SERVICES,
}  # fmt: skip
# v1 messages are wire-identical to v1alpha's, so one set of classes serves both paths.
VERSIONS = pytest.mark.parametrize(
    "method",
    [
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ],
    ids=["v1", "v1alpha"],
)


async def _ask(
    channel: grpc.aio.Channel, method: str, *requests: ServerReflectionRequest
) -> list[ServerReflectionResponse]:
    call = channel.stream_stream(
        method,
        request_serializer=ServerReflectionRequest.SerializeToString,
        response_deserializer=ServerReflectionResponse.FromString,
    )
    return [reply async for reply in call(iter(requests), timeout=DEADLINE)]


def _files(reply: ServerReflectionResponse) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    assert reply.WhichOneof("message_response") == "file_descriptor_response", reply
    protos = reply.file_descriptor_response.file_descriptor_proto
    files = (descriptor_pb2.FileDescriptorProto.FromString(p) for p in protos)
    return {file.name: file for file in files}


def _comments(file: descriptor_pb2.FileDescriptorProto) -> set[str]:
    return {location.leading_comments.strip() for location in file.source_code_info.location}


@VERSIONS
async def test_lists_services_and_serves_files_with_comments(
    channel: grpc.aio.Channel, method: str
) -> None:
    listed, by_method, by_name = await _ask(
        channel,
        method,
        ServerReflectionRequest(list_services=""),
        ServerReflectionRequest(file_containing_symbol="docgate.v1.DocumentService.GetDocument"),
        ServerReflectionRequest(file_by_filename="docgate/v1/users.proto"),
    )
    assert {s.name for s in listed.list_services_response.service} >= SERVED
    files = _files(by_method)
    assert "google/protobuf/timestamp.proto" in files  # the imports come along, as upstream
    documents = files["docgate/v1/documents.proto"]
    (service,) = (s for s in documents.service if s.name == "DocumentService")
    assert "GetDocument" in {m.name for m in service.method}
    assert any(
        c.startswith("Full-text search over title and content; matches newest first")
        for c in _comments(documents)
    )
    users = _files(by_name)["docgate/v1/users.proto"]
    assert "UserService manages the people who call docgate." in _comments(users)


@VERSIONS
async def test_describes_the_v1_reflection_service(channel: grpc.aio.Channel, method: str) -> None:
    (reply,) = await _ask(
        channel,
        method,
        ServerReflectionRequest(file_containing_symbol="grpc.reflection.v1.ServerReflection"),
    )
    (file,) = _files(reply).values()
    assert (file.name, file.package) == (
        "grpc/reflection/v1/reflection.proto",
        "grpc.reflection.v1",
    )
    (rpc,) = file.service[0].method
    assert rpc.input_type == ".grpc.reflection.v1.ServerReflectionRequest"


@VERSIONS
@pytest.mark.parametrize(
    "symbol", ["docgate.v1.NoSuchMessage", "docgate.v1.DocumentService.NoSuchMethod", ""]
)
async def test_unknown_symbol_is_not_found(
    channel: grpc.aio.Channel, method: str, symbol: str
) -> None:
    (reply,) = await _ask(channel, method, ServerReflectionRequest(file_containing_symbol=symbol))
    assert reply.WhichOneof("message_response") == "error_response"
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert reply.original_request.file_containing_symbol == symbol


async def test_grpcurl_lists_both_reflection_versions(server: RunningServer) -> None:
    code, out, err = await grpcurl(f"127.0.0.1:{server.port}", "list")
    assert code == 0, err
    assert set(out.split()) >= SERVED


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        (
            "docgate.v1.DocumentService",
            "// DocumentService stores documents and shows each caller only what their roles",
        ),
        # GetDocument has no comment in the proto; finding it at all is what grpc#34743 broke.
        (
            "docgate.v1.DocumentService.GetDocument",
            "rpc GetDocument ( .docgate.v1.GetDocumentRequest ) returns ( .docgate.v1.Document );",
        ),
        (
            "docgate.v1.DocumentService.SearchDocuments",
            '// documents match. Narrow a common search with more words or "phrases".\n'
            "rpc SearchDocuments (",
        ),
        (
            "docgate.v1.Document",
            "// Changes on every change; send it back on Update/Delete for optimistic concurrency.",
        ),
    ],
)
async def test_grpcurl_describe_shows_the_proto(
    server: RunningServer, symbol: str, expected: str
) -> None:
    code, out, err = await grpcurl(f"127.0.0.1:{server.port}", "describe", symbol)
    assert code == 0, err
    assert expected in out


async def test_grpcurl_describes_every_listed_service(server: RunningServer) -> None:
    target = f"127.0.0.1:{server.port}"
    code, listed, err = await grpcurl(target, "list")
    assert code == 0, err
    code, out, err = await grpcurl(target, "describe")  # no symbol: every listed service
    assert code == 0, err
    described = {line.split()[0] for line in out.splitlines() if line.endswith(" is a service:")}
    assert described == set(listed.split())


async def test_grpcurl_call_encodes_json_through_reflection(
    server: RunningServer, admin: TestUser
) -> None:
    body = {"document": {"title": "via reflection", "requiresPaidAccess": True}}
    code, out, err = await grpcurl(
        "-H", f"authorization: Bearer {admin.token}", "-d", json.dumps(body),
        f"127.0.0.1:{server.port}", "docgate.v1.DocumentService/CreateDocument",
    )  # fmt: skip
    assert code == 0, err
    reply = json.loads(out)
    # Comments are all the served files add: grpcurl still prints the proto field names that
    # docs/ shows (the json_name protoc records in a descriptor set is dropped).
    assert (reply["title"], reply["requires_paid_access"]) == ("via reflection", True)
    assert reply["owner_id"] == str(admin.id)
