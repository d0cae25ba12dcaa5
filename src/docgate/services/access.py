"""docgate.v1.AccessService: why a user can or cannot see and change a document, a project or
a configuration. Validate the ids, settle who the request is about (docgate.policy.
explained_user), then one read (docgate.repositories.access)."""

from __future__ import annotations

from typing import Any

import grpc.aio

from docgate import policy
from docgate import validation as check
from docgate.db.uow import UnitOfWork
from docgate.principal import require_principal
from docgate.repositories.access import AccessRepository
from docgate.v1 import access_pb2, access_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
_SERVICE = "/docgate.v1.AccessService/"


class AccessService(access_pb2_grpc.AccessServiceServicer):
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def ExplainDocumentAccess(
        self, request: access_pb2.ExplainDocumentAccessRequest, context: Context
    ) -> access_pb2.AccessExplanation:
        doc_id = check.parse_id(request.document_id, "document_id")
        user_id = policy.explained_user(
            require_principal(), request.user_id, _SERVICE + "ExplainDocumentAccess"
        )
        async with self._uow.read() as session:
            access = AccessRepository(session)
            return await access.document(await access.subject(user_id), doc_id)

    async def ExplainProjectAccess(
        self, request: access_pb2.ExplainProjectAccessRequest, context: Context
    ) -> access_pb2.AccessExplanation:
        project_id = check.parse_id(request.project_id, "project_id")
        user_id = policy.explained_user(
            require_principal(), request.user_id, _SERVICE + "ExplainProjectAccess"
        )
        async with self._uow.read() as session:
            access = AccessRepository(session)
            return await access.project(await access.subject(user_id), project_id)

    async def ExplainConfigurationAccess(
        self, request: access_pb2.ExplainConfigurationAccessRequest, context: Context
    ) -> access_pb2.ConfigurationAccessExplanation:
        configuration_id = check.parse_id(request.configuration_id, "configuration_id")
        user_id = policy.explained_user(
            require_principal(), request.user_id, _SERVICE + "ExplainConfigurationAccess"
        )
        async with self._uow.read() as session:
            access = AccessRepository(session)
            return await access.configuration(await access.subject(user_id), configuration_id)
