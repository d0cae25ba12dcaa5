"""The service registry: what the server serves, as data.

One `ServiceBinding` per gRPC service ties together the servicer, the generated
``add_*Servicer_to_server`` function and the service descriptor. The composition root holds the
one list (docgate.bootstrap.App.services); the server registers, health-reports and reflects
whatever is in it, and the policy's deny-by-default check and the permission tests take their
method list from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor


@dataclass(frozen=True)
class ServiceBinding:
    servicer: object
    add_to_server: Callable[[Any, Any], None]
    descriptor: ServiceDescriptor

    @classmethod
    def of(
        cls, servicer: object, pb2: ModuleType, pb2_grpc: ModuleType, service: str
    ) -> ServiceBinding:
        """The binding of ``servicer`` for ``service`` as protoc generated it: the descriptor
        from ``pb2`` and ``add_<service>Servicer_to_server`` from ``pb2_grpc``."""
        descriptor = pb2.DESCRIPTOR.services_by_name[service]
        return cls(servicer, getattr(pb2_grpc, f"add_{service}Servicer_to_server"), descriptor)

    @property
    def name(self) -> str:
        """The full service name (``docgate.v1.DocumentService``)."""
        return self.descriptor.full_name

    def method_paths(self) -> Iterator[str]:
        """``/package.Service/Method`` for each RPC, as grpc names them on the wire."""
        for method in self.descriptor.methods:
            yield f"/{self.name}/{method.name}"

    def add_to(self, server: Any) -> None:
        self.add_to_server(self.servicer, server)


def method_paths(bindings: Iterable[ServiceBinding]) -> list[str]:
    return [path for binding in bindings for path in binding.method_paths()]
