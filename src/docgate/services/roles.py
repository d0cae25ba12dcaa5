"""docgate.v1.RoleService: roles and membership here, configurations and grants in
docgate.services.configurations (one servicer, two modules)."""

from __future__ import annotations

from google.protobuf import empty_pb2

from docgate import validation
from docgate.auth.principal import require_principal
from docgate.repositories.memberships import MembershipRepository
from docgate.repositories.roles import RoleRepository
from docgate.services.configurations import ConfigurationRpcs, Context
from docgate.services.users import subject_user_id
from docgate.v1 import roles_pb2

MAX_DESCRIPTION_LENGTH = 1000
ROLE_UPDATE_PATHS = frozenset({"description"})


def _description(value: str) -> str:
    return validation.text(value, "description", max_length=MAX_DESCRIPTION_LENGTH)


class RoleService(ConfigurationRpcs):
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
        user_id = subject_user_id(require_principal(), request.user_id, "user_id")
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
        user_id = subject_user_id(require_principal(), request.user_id, "user_id")
        role = validation.role_name(request.role)
        async with self._uow.read() as session:
            has_role = await MembershipRepository(session).has_role(user_id, role)
        return roles_pb2.CheckRoleResponse(has_role=has_role)
