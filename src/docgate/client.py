"""A small typed Python client for docgate (grpc.aio).

::

    from docgate.client import NotFound, Tls, connect

    async with connect("docgate.internal:443", token=token, tls=Tls(ca_file=ca)) as docgate:
        me = await docgate.users.GetCurrentUser(users_pb2.GetCurrentUserRequest())
        try:
            await docgate.documents.GetDocument(documents_pb2.GetDocumentRequest(id=doc_id))
        except NotFound as error:
            print(error.reason)  # DOCUMENT_NOT_FOUND

One channel carries every service. On it:

* the bearer token is attached to each call (a string, or a function called per call so a
  token can be refreshed);
* the service config (docs/service-config.json, shipped as docgate/service_config.json) sets
  per-method timeouts and retries UNAVAILABLE on the idempotent RPCs only;
* a create RPC whose request carries an empty ``request_id`` gets a fresh one, so that its
  retry replays the first result instead of creating twice (the caller's message is not
  changed);
* a failed call raises ``CallError`` (a grpc.aio.AioRpcError, so existing handlers still
  work) with the ErrorInfo ``reason`` and ``info`` metadata; a subclass per status code.

Only the generated stubs are imported here, never the server's modules (an import-linter
contract in pyproject.toml).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import grpc.aio
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2_grpc

from docgate.v1 import (
    access_pb2_grpc,
    audit_pb2_grpc,
    documents_pb2_grpc,
    projects_pb2_grpc,
    roles_pb2_grpc,
    users_pb2_grpc,
)

Token = str | Callable[[], str]

# Above the server's default DOCGATE_MAX_SEND_MESSAGE_BYTES (grpc's own default, 4 MiB, is
# under the largest answer a server may send).
MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024


def service_config() -> str:
    """The gRPC service config (JSON) every docgate client should use."""
    return resources.files("docgate").joinpath("service_config.json").read_text()


class CallError(grpc.aio.AioRpcError):
    """A docgate call failed: the status code, its message and the ErrorInfo reason."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        super().__init__(
            error.code(),
            error.initial_metadata(),
            error.trailing_metadata(),  # type: ignore[arg-type]  # a Metadata, not a tuple
            error.details(),
            error.debug_error_string(),
        )
        info = _error_info(error.trailing_metadata())
        self.reason: str | None = info.reason if info else None
        self.info: dict[str, str] = dict(info.metadata) if info else {}

    def __str__(self) -> str:
        return f"{self.code().name} {self.reason or ''}: {self.details()}"


class InvalidArgument(CallError): ...


class Unauthenticated(CallError): ...


class PermissionDenied(CallError): ...


class NotFound(CallError): ...


class AlreadyExists(CallError): ...


class FailedPrecondition(CallError): ...


class Aborted(CallError): ...


class ResourceExhausted(CallError): ...


class DeadlineExceeded(CallError): ...


class Unavailable(CallError): ...


_BY_CODE: dict[grpc.StatusCode, type[CallError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
}


def _error_info(trailers: Any) -> error_details_pb2.ErrorInfo | None:
    for key, value in trailers or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    return None


def call_error(error: grpc.aio.AioRpcError) -> CallError:
    """The typed exception for a failed call."""
    return _BY_CODE.get(error.code(), CallError)(error)


class _Calls(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Token per call, request ids on creates, typed errors."""

    def __init__(self, token: Token | None) -> None:
        self._token = token

    def _metadata(self, details: Any) -> Any:
        pairs = tuple(details.metadata or ())
        if self._token is None or any(key == "authorization" for key, _ in pairs):
            return details.metadata
        token = self._token() if callable(self._token) else self._token
        return grpc.aio.Metadata(*pairs, ("authorization", f"Bearer {token}"))

    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            client_call_details.timeout,
            self._metadata(client_call_details),
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        call = await continuation(details, _with_request_id(request))
        try:
            await call
        except grpc.aio.AioRpcError as error:
            raise call_error(error) from None
        return call  # done: awaiting it again gives the answer; its metadata stay readable


def _with_request_id(request: Any) -> Any:
    fields = getattr(getattr(request, "DESCRIPTOR", None), "fields_by_name", {})
    if "request_id" not in fields or request.request_id:
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    copy.request_id = str(uuid.uuid4())
    return copy


@dataclass(frozen=True)
class Tls:
    """TLS to the server: trust ``ca_file`` (unset: the system's roots); with ``cert_file`` and
    ``key_file``, present that client certificate (mTLS)."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None  # when the certificate names another host than the target

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: Path | None) -> bytes | None:
            return Path(path).read_bytes() if path is not None else None

        return grpc.ssl_channel_credentials(
            read(self.ca_file), read(self.key_file), read(self.cert_file)
        )


@dataclass
class Client:
    """Every docgate service on one channel."""

    channel: grpc.aio.Channel
    documents: documents_pb2_grpc.DocumentServiceAsyncStub
    projects: projects_pb2_grpc.ProjectServiceAsyncStub
    roles: roles_pb2_grpc.RoleServiceAsyncStub
    users: users_pb2_grpc.UserServiceAsyncStub
    access: access_pb2_grpc.AccessServiceAsyncStub
    audit: audit_pb2_grpc.AuditServiceAsyncStub
    health: health_pb2_grpc.HealthStub

    async def close(self) -> None:
        await self.channel.close(None)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def connect(
    target: str,
    *,
    token: Token | None = None,
    tls: Tls | bool = False,
    options: Sequence[tuple[str, Any]] = (),
) -> Client:
    """A client of the docgate at ``target`` (host:port). ``tls=True`` trusts the system's
    roots; a ``Tls`` names the CA and the client certificate; False is plaintext."""
    settings = Tls() if tls is True else tls
    channel_options: list[tuple[str, Any]] = [
        ("grpc.service_config", service_config()),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
    ]
    if isinstance(settings, Tls) and settings.server_name:
        channel_options.append(("grpc.ssl_target_name_override", settings.server_name))
    channel_options.extend(options)
    interceptors: Any = [_Calls(token)]
    if isinstance(settings, Tls):
        channel = grpc.aio.secure_channel(
            target, settings.credentials(), channel_options, interceptors=interceptors
        )
    else:
        channel = grpc.aio.insecure_channel(target, channel_options, interceptors=interceptors)
    return Client(
        channel=channel,
        documents=documents_pb2_grpc.DocumentServiceStub(channel),
        projects=projects_pb2_grpc.ProjectServiceStub(channel),
        roles=roles_pb2_grpc.RoleServiceStub(channel),
        users=users_pb2_grpc.UserServiceStub(channel),
        access=access_pb2_grpc.AccessServiceStub(channel),
        audit=audit_pb2_grpc.AuditServiceStub(channel),
        health=health_pb2_grpc.HealthStub(channel),
    )
