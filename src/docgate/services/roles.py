"""docgate.v1.RoleService."""

from __future__ import annotations

from docgate.db.uow import UnitOfWork
from docgate.v1 import roles_pb2_grpc


class RoleService(roles_pb2_grpc.RoleServiceServicer):
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
