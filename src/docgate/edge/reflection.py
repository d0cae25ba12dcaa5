"""Server reflection that grpcurl users can lean on: v1 and v1alpha, method symbols, comments.

grpcio-reflection only ships ``grpc.reflection.v1alpha`` and leaves three gaps, filled here
around its servicer rather than by rewriting it:

* v1 is wire-identical to v1alpha, so the same servicer (and message classes) also answers
  under the v1 service name; its descriptor is rebuilt from v1alpha's, so clients can describe
  every service that ``list`` shows.
* ``file_containing_symbol`` does not know methods ("pkg.Service.Method": grpc/grpc#34743),
  which is what ``grpcurl describe pkg.Service.Method`` asks for.
* Descriptors in *_pb2.py carry no comments. docgate's own files are served from the
  descriptor set that ``make protos`` writes with source info; every other file comes from the
  default pool, as upstream does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from grpc_reflection.v1alpha import reflection, reflection_pb2

_T = TypeVar("_T")
_V1ALPHA = reflection.SERVICE_NAME
_V1 = "grpc.reflection.v1.ServerReflection"
_METHOD = "ServerReflectionInfo"
# Written by scripts/gen_protos.py beside the generated code; installed as package data.
_DESCRIPTOR_SET = ("docgate.v1", "descriptors.binpb")


def _documented_files() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """docgate's files as protoc wrote them with ``--include_source_info``, by file name."""
    package, name = _DESCRIPTOR_SET
    data = resources.files(package).joinpath(name).read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(data).file
    for file in files:
        _drop_json_names(file.message_type)
    return {file.name: file for file in files}


def _drop_json_names(messages: Any) -> None:
    """protoc records each field's camelCase JSON name in a descriptor set but not in the
    descriptors embedded in *_pb2.py; grpcurl prints whichever it is given. Dropping them keeps
    the proto field names grpcurl has always shown (and docs/ shows): comments are all that
    these files add."""
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        _drop_json_names(message.nested_type)


def _v1_reflection_pool() -> descriptor_pool.DescriptorPool:
    """A pool holding grpc/reflection/v1/reflection.proto: v1alpha's messages and service
    under the v1 package. Private, so the default pool is left as the imports made it."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = "grpc/reflection/v1/reflection.proto"
    proto.package = "grpc.reflection.v1"
    proto.ClearField("options")  # v1alpha's are deprecated=true and its java/go packages
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(old, new)
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(old, new)
        method.output_type = method.output_type.replace(old, new)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return pool


def _file_containing(pool: descriptor_pool.DescriptorPool, symbol: str) -> FileDescriptor:
    try:
        return pool.FindFileContainingSymbol(symbol)
    except KeyError:  # perhaps a method, which the pool's symbol lookup does not cover
        return pool.FindMethodByName(symbol).containing_service.file


@dataclass(frozen=True)
class _File:
    """A file as the upstream servicer walks it (name, dependencies, CopyToProto), copied with
    its comments when it is one of docgate's."""

    descriptor: FileDescriptor
    documented: Mapping[str, descriptor_pb2.FileDescriptorProto]

    @property
    def name(self) -> str:
        return self.descriptor.name

    @property
    def dependencies(self) -> list[_File]:
        return [_File(d, self.documented) for d in self.descriptor.dependencies]

    def CopyToProto(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
        documented = self.documented.get(self.name)
        if documented is None:
            self.descriptor.CopyToProto(proto)
        else:
            proto.CopyFrom(documented)


class _Pool:
    """The part of DescriptorPool the upstream servicer uses, answered from several pools in
    turn, knowing method symbols and serving docgate's files with their comments."""

    def __init__(
        self,
        pools: Sequence[descriptor_pool.DescriptorPool],
        documented: Mapping[str, descriptor_pb2.FileDescriptorProto],
    ) -> None:
        self._pools = pools
        self._documented = documented

    def _first(self, find: Callable[[descriptor_pool.DescriptorPool], _T]) -> _T:
        for pool in self._pools:
            with contextlib.suppress(KeyError):
                return find(pool)
        raise KeyError("not in any pool")  # upstream answers NOT_FOUND for a KeyError

    def FindFileByName(self, name: str) -> _File:
        return _File(self._first(lambda pool: pool.FindFileByName(name)), self._documented)

    def FindFileContainingSymbol(self, symbol: str) -> _File:
        return _File(self._first(lambda pool: _file_containing(pool, symbol)), self._documented)

    def FindMessageTypeByName(self, name: str) -> Descriptor:
        return self._first(lambda pool: pool.FindMessageTypeByName(name))

    def FindExtensionByNumber(self, message: Descriptor, number: int) -> FieldDescriptor:
        return message.file.pool.FindExtensionByNumber(message, number)

    def FindAllExtensions(self, message: Descriptor) -> list[FieldDescriptor]:
        return message.file.pool.FindAllExtensions(message)


def _handler(service: str, servicer: Any) -> grpc.GenericRpcHandler[Any, Any]:
    """``servicer`` (v1alpha's) under ``service``: the v1 messages are the v1alpha ones."""
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(service, {_METHOD: method})


def enable_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    """Serve reflection for ``service_names`` (full names) and for itself, under both
    ``grpc.reflection.v1`` and ``grpc.reflection.v1alpha``. Reads the descriptor set now, so a
    missing one fails at startup rather than on the first ``describe``."""
    pool = _Pool((descriptor_pool.Default(), _v1_reflection_pool()), _documented_files())
    names = (*service_names, _V1, _V1ALPHA)
    # reflection.aio is upstream's asyncio servicer; grpc-stubs mistake it for grpc.aio.
    servicer = reflection.aio.ReflectionServicer(names, pool=pool)  # type: ignore[attr-defined]
    server.add_generic_rpc_handlers((_handler(_V1, servicer), _handler(_V1ALPHA, servicer)))
