"""docgate.v1.RoleService: roles, membership, configurations and their grants to roles."""

from __future__ import annotations

from typing import Any

import grpc.aio
from google.protobuf import empty_pb2

from docgate import policy, validation
from docgate.db.uow import UnitOfWork
from docgate.principal import require_principal
from docgate.repositories.configurations import ConfigurationRepository
from docgate.repositories.grants import GrantRepository
from docgate.repositories.memberships import MembershipRepository
from docgate.repositories.roles import RoleRepository
from docgate.v1 import roles_pb2, roles_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

MAX_DESCRIPTION_LENGTH = 1000
MAX_CONFIGURATION_NAME_LENGTH = 100
ROLE_UPDATE_PATHS = frozenset({"description"})


def _description(value: str) -> str:
    return validation.text(value, "description", max_length=MAX_DESCRIPTION_LENGTH)


class RoleService(roles_pb2_grpc.RoleServiceServicer):
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def CreateRole(
        self, request: roles_pb2.CreateRoleRequest, context: Context
    ) -> roles_pb2.Role:
        name = validation.role_name(request.name, "name")
        description = _description(request.description)
        async with self._uow.transaction() as session:
            return await RoleRepository(session).create(name, description)

    async def GetRole(self, request: roles_pb2.GetRoleRequest, context: Context) -> roles_pb2.Role:
        name = validation.role_name(request.name, "name")
        async with self._uow.read() as session:
            return await RoleRepository(session).get(name)

    async def ListRoles(
        self, request: roles_pb2.ListRolesRequest, context: Context
    ) -> roles_pb2.ListRolesResponse:
        page_size = validation.page_size(request.page_size)
        async with self._uow.read() as session:
            return await RoleRepository(session).list_page(page_size, request.page_token)

    async def UpdateRole(
        self, request: roles_pb2.UpdateRoleRequest, context: Context
    ) -> roles_pb2.Role:
        name = validation.role_name(request.role.name, "role.name")
        validation.update_mask(request.update_mask.paths, ROLE_UPDATE_PATHS)
        description = _description(request.role.description)
        async with self._uow.transaction() as session:
            return await RoleRepository(session).update_description(name, description)

    async def DeleteRole(
        self, request: roles_pb2.DeleteRoleRequest, context: Context
    ) -> empty_pb2.Empty:
        name = validation.role_name(request.name, "name")
        async with self._uow.transaction() as session:
            await RoleRepository(session).delete(name)
        return empty_pb2.Empty()

    async def AssignRole(
        self, request: roles_pb2.AssignRoleRequest, context: Context
    ) -> roles_pb2.RoleMembership:
        user_id = validation.parse_id(request.user_id, "user_id")
        role = validation.role_name(request.role)
        async with self._uow.transaction() as session:
            return await MembershipRepository(session).assign(user_id, role)

    async def RevokeRole(
        self, request: roles_pb2.RevokeRoleRequest, context: Context
    ) -> empty_pb2.Empty:
        user_id = validation.parse_id(request.user_id, "user_id")
        role = validation.role_name(request.role)
        async with self._uow.transaction() as session:
            await MembershipRepository(session).revoke(user_id, role)
        return empty_pb2.Empty()

    async def ListUserRoles(
        self, request: roles_pb2.ListUserRolesRequest, context: Context
    ) -> roles_pb2.ListUserRolesResponse:
        user_id = policy.subject_user_id(
            require_principal(), request.user_id, "user_id", "/docgate.v1.RoleService/ListUserRoles"
        )
        async with self._uow.read() as session:
            return await MembershipRepository(session).list_for_user(user_id)

    async def ListRoleMembers(
        self, request: roles_pb2.ListRoleMembersRequest, context: Context
    ) -> roles_pb2.ListRoleMembersResponse:
        role = validation.role_name(request.role)
        page_size = validation.page_size(request.page_size)
        async with self._uow.read() as session:
            repository = MembershipRepository(session)
            return await repository.list_members(role, page_size, request.page_token)

    async def CheckRole(
        self, request: roles_pb2.CheckRoleRequest, context: Context
    ) -> roles_pb2.CheckRoleResponse:
        user_id = policy.subject_user_id(
            require_principal(), request.user_id, "user_id", "/docgate.v1.RoleService/CheckRole"
        )
        role = validation.role_name(request.role)
        async with self._uow.read() as session:
            has_role = await MembershipRepository(session).has_role(user_id, role)
        return roles_pb2.CheckRoleResponse(has_role=has_role)

    async def CreateConfiguration(
        self, request: roles_pb2.CreateConfigurationRequest, context: Context
    ) -> roles_pb2.Configuration:
        name = validation.text(
            request.name.strip(), "name", max_length=MAX_CONFIGURATION_NAME_LENGTH, required=True
        )
        description = _description(request.description)
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
        level = validation.positive(request.access_level, "access_level", "INVALID_ACCESS_LEVEL")
        expires_at = None
        if request.HasField("expire_time"):
            expires_at = validation.timestamp(request.expire_time, "expire_time")
        async with self._uow.transaction() as session:
            return await GrantRepository(session).grant(
                role, configuration_id, level, expires_at, granted_by
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
