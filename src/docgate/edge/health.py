"""grpc.health.v1.Health with its List RPC.

grpcio-health-checking's asyncio servicer implements Check and Watch but leaves List (added to
health.proto later) to the generated base, which raises NotImplementedError: every
`grpcurl … grpc.health.v1.Health/List` answered INTERNAL. List answers from the same table
Check reads (``_server_status``, declared on the parent class), so the two always agree,
during a graceful shutdown too.

Each status change (graceful shutdown included) is also the ``docgate_health_status`` gauge when
metrics are on: ``_set`` is where the parent class records every one.
"""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from docgate.edge.metrics import Metrics


class HealthServicer(health_aio.HealthServicer):  # type: ignore[misc]
    def __init__(self, metrics: Metrics | None = None) -> None:
        super().__init__()
        self._metrics = metrics

    async def _set(self, service: str, status: Any) -> None:
        await super()._set(service, status)
        if self._metrics is not None:
            self._metrics.health_changed(service, status == health_pb2.HealthCheckResponse.SERVING)

    async def List(self, request: Any, context: Any) -> Any:
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in sorted(self._server_status.items())
            }
        )
