"""docgate.v1.AuditService: the audit trail, for admins (policy.RPC_ACCESS)."""

from __future__ import annotations

from typing import Any, Final

import grpc.aio

from docgate import validation as check
from docgate.audit import Action
from docgate.db.uow import UnitOfWork
from docgate.errors import InvalidArgument
from docgate.repositories.audit import AuditQuery, AuditRepository
from docgate.v1 import audit_pb2, audit_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
MAX_RESOURCE_LENGTH: Final = 1000
_PREFIX: Final = "AUDIT_ACTION_"


def _action(value: int) -> Action | None:
    """An action filter; AUDIT_ACTION_UNSPECIFIED does not filter."""
    if value == audit_pb2.AUDIT_ACTION_UNSPECIFIED:
        return None
    if value not in audit_pb2.AuditAction.values():
        raise InvalidArgument(
            "action is not a known audit action", field="action", reason="INVALID_AUDIT_ACTION"
        )
    return Action[audit_pb2.AuditAction.Name(value).removeprefix(_PREFIX)]  # type: ignore[arg-type]


class AuditService(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def ListAuditEntries(
        self, request: audit_pb2.ListAuditEntriesRequest, context: Context
    ) -> audit_pb2.ListAuditEntriesResponse:
        start = request.start_time if request.HasField("start_time") else None
        end = request.end_time if request.HasField("end_time") else None
        query = AuditQuery(
            page_size=check.page_size(request.page_size),
            page_token=request.page_token,
            actor_id=check.optional_id(request.actor_id, "actor_id"),
            resource=check.text(request.resource, "resource", max_length=MAX_RESOURCE_LENGTH)
            or None,
            action=_action(request.action),
            start_time=None if start is None else check.timestamp(start, "start_time"),
            end_time=None if end is None else check.timestamp(end, "end_time"),
        )
        await self._uow.seal_audit()  # the page shows every committed entry, sealed
        async with self._uow.read() as session:
            return await AuditRepository(session).list(query)
