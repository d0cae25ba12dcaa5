"""docgate.v1.DocumentService."""

from __future__ import annotations

from docgate.config import Settings
from docgate.db.uow import UnitOfWork
from docgate.v1 import documents_pb2_grpc


class DocumentService(documents_pb2_grpc.DocumentServiceServicer):
    def __init__(self, uow: UnitOfWork, settings: Settings) -> None:
        self._uow = uow
        self._settings = settings
