"""docgate.v1.RoleService, part two: configurations and their grants to roles.

RoleService (docgate.services.roles) inherits these RPCs, so the service stays one servicer.
"""

from __future__ import annotations

from typing import Any

import grpc.aio
from google.protobuf import empty_pb2

from docgate import validation
from docgate.auth.principal import require_principal
from docgate.db.uow import UnitOfWork
from docgate.errors import InvalidArgument
from docgate.repositories.configurations import ConfigurationRepository
from docgate.repositories.grants import GrantRepository
from docgate.v1 import roles_pb2, roles_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

MAX_CONFIGURATION_NAME_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 1000


class ConfigurationRpcs(roles_pb2_grpc.RoleServiceServicer):
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def CreateConfiguration(
        self, request: roles_pb2.CreateConfigurationRequest, context: Context
    ) -> roles_pb2.Configuration:
        name = validation.text(
            request.name, "name", max_length=MAX_CONFIGURATION_NAME_LENGTH, required=True
        )
        description = validation.text(
            request.description, "description", max_length=MAX_DESCRIPTION_LENGTH
        )
        async with self._uow.transaction() as session:
            return await ConfigurationRepository(session).create(name, description)

    async def ListConfigurations(
        self, request: roles_pb2.ListConfigurationsRequest, context: Context
    ) -> roles_pb2.ListConfigurationsResponse:
        page_size = validation.page_size(request.page_size)
        async with self._uow.read() as session:
            repository = ConfigurationRepository(session)
            return await repository.list_page(page_size, request.page_token)

    async def DeleteConfiguration(
        self, request: roles_pb2.DeleteConfigurationRequest, context: Context
    ) -> empty_pb2.Empty:
        configuration_id = validation.parse_id(request.id)
        async with self._uow.transaction() as session:
            await ConfigurationRepository(session).delete(configuration_id)
        return empty_pb2.Empty()

    async def GrantConfiguration(
        self, request: roles_pb2.GrantConfigurationRequest, context: Context
    ) -> roles_pb2.ConfigurationGrant:
        granted_by = require_principal().user_id  # never from the request
        role = validation.role_name(request.role)
        configuration_id = validation.parse_id(request.configuration_id, "configuration_id")
        if request.access_level < 1:
            raise InvalidArgument(
                "access_level must be at least 1",
                reason="INVALID_ACCESS_LEVEL",
                metadata={"field": "access_level"},
            )
        expires_at = None
        if request.HasField("expire_time"):
            expires_at = validation.timestamp(request.expire_time, "expire_time")
        async with self._uow.transaction() as session:
            return await GrantRepository(session).grant(
                role, configuration_id, request.access_level, expires_at, granted_by
            )

    async def RevokeConfiguration(
        self, request: roles_pb2.RevokeConfigurationRequest, context: Context
    ) -> empty_pb2.Empty:
        role = validation.role_name(request.role)
        configuration_id = validation.parse_id(request.configuration_id, "configuration_id")
        async with self._uow.transaction() as session:
            await GrantRepository(session).revoke(role, configuration_id)
        return empty_pb2.Empty()

    async def ListRoleConfigurations(
        self, request: roles_pb2.ListRoleConfigurationsRequest, context: Context
    ) -> roles_pb2.ListRoleConfigurationsResponse:
        role = validation.role_name(request.role)
        async with self._uow.read() as session:
            return await GrantRepository(session).grants_of(role)

    async def ListMyConfigurations(
        self, request: roles_pb2.ListMyConfigurationsRequest, context: Context
    ) -> roles_pb2.ListMyConfigurationsResponse:
        user_id = require_principal().user_id
        async with self._uow.read() as session:
            return await GrantRepository(session).reachable_by(user_id)
