"""The fuzz test's harness: every served method as a `Target`, a call of any method with any
bytes (an identity serializer, so whatever a strategy drew reaches the wire unchanged), and a
`Server` of the test's own whose log of each call is kept beside its status."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from docgate.bootstrap import App
from docgate.server import RunningServer
from tests.e2e.fuzz_world import World
from tests.support import RecordingHandler, TestUser, served_bindings

DEADLINE = 20.0


@dataclass(frozen=True)
class Target:
    """One method as served: ``service`` is the name it is served under."""

    service: str
    method: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method.name}"

    def __str__(self) -> str:
        return self.path

    __repr__ = __str__

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # as hypothesis prints it
        printer.text(self.path)


def targets() -> list[Target]:
    """Every method the server serves: docgate's registry, health, and reflection (v1alpha and
    v1, which docgate serves with v1alpha's messages: docgate.edge.reflection)."""
    targets = [Target(b.name, m) for b in served_bindings() for m in b.descriptor.methods]
    health = health_pb2.DESCRIPTOR.services_by_name["Health"]
    targets += [Target(health.full_name, m) for m in health.methods]
    reflection = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]
    for name in ("grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"):
        targets += [Target(name, m) for m in reflection.methods]
    return targets


# --- calling any method with any bytes ------------------------------------------------------


def _same(raw: bytes) -> bytes:
    return raw


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str
    server_log: str  # what the server logged while it handled the call

    def __str__(self) -> str:
        return f"{self.code.name}: {self.details!r}\nserver log:\n{self.server_log or '(none)'}"


async def _status(
    target: Target, channel: grpc.aio.Channel, data: bytes, metadata: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, str]:
    """Send ``data`` as the request (an identity serializer: bytes reach the wire as they are)
    and return the call's status; a streaming call is judged by its first response."""
    method, kw = target.method, {"request_serializer": _same, "response_deserializer": _same}
    options = {"metadata": metadata, "timeout": DEADLINE}
    try:
        if not method.client_streaming and not method.server_streaming:
            await channel.unary_unary(target.path, **kw)(data, **options)
        elif not method.client_streaming:
            call = channel.unary_stream(target.path, **kw)(data, **options)
            await _first(call)
        elif not method.server_streaming:
            await channel.stream_unary(target.path, **kw)(iter([data]), **options)
        else:
            call = channel.stream_stream(target.path, **kw)(iter([data]), **options)
            await _first(call)
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def _first(call: grpc.aio.Call) -> None:
    try:
        response = await call.read()  # type: ignore[attr-defined]
        if response is grpc.aio.EOF:
            code = await call.code()
            if code != grpc.StatusCode.OK:
                raise grpc.aio.AioRpcError(code, None, None, await call.details())
    finally:
        call.cancel()


class ServerLog(RecordingHandler):
    """The records of the call in flight (calls are sequential): attach to the root logger."""

    def text(self) -> str:
        lines = []
        for record in self.records:
            lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")
            if record.exc_info and record.exc_info[1] is not None:
                lines += traceback.format_exception_only(record.exc_info[1])
        return "\n".join(line.rstrip() for line in lines)


@dataclass
class Server:
    app: App
    running: RunningServer
    channel: grpc.aio.Channel
    log: ServerLog
    worlds: dict[str, World] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<fuzz server on port {self.running.port}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis prints a failing example's arguments (it would list the fields)."""
        printer.text(repr(self))

    async def send(self, target: Target, data: bytes, who: TestUser | None) -> Outcome:
        self.log.records.clear()
        code, details = await _status(target, self.channel, data, who.metadata if who else ())
        return Outcome(code, details, self.log.text())

    async def serving(self) -> bool:
        reply = await health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(), timeout=DEADLINE
        )
        return reply.status == health_pb2.HealthCheckResponse.SERVING
