"""docgate.v1.UserService."""

from __future__ import annotations

from typing import Any

import grpc.aio
from google.protobuf import empty_pb2

from docgate import policy, validation
from docgate.db.uow import UnitOfWork
from docgate.errors import InvalidArgument
from docgate.principal import require_principal
from docgate.repositories.users import UserRepository
from docgate.v1 import users_pb2, users_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

USER_UPDATE_PATHS = frozenset({"email", "is_active"})


class UserService(users_pb2_grpc.UserServiceServicer):
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def GetCurrentUser(
        self, request: users_pb2.GetCurrentUserRequest, context: Context
    ) -> users_pb2.User:
        principal = require_principal()
        async with self._uow.read() as session:
            return await UserRepository(session).get(principal.user_id)

    async def CreateUser(
        self, request: users_pb2.CreateUserRequest, context: Context
    ) -> users_pb2.User:
        username = validation.username(request.username)
        email = validation.email(request.email)
        roles = [validation.role_name(name, "roles") for name in request.roles]
        async with self._uow.transaction() as session:
            return await UserRepository(session).create(username, email, roles)

    async def GetUser(self, request: users_pb2.GetUserRequest, context: Context) -> users_pb2.User:
        user_id = policy.subject_user_id(
            require_principal(), request.id, "id", "/docgate.v1.UserService/GetUser"
        )
        async with self._uow.read() as session:
            return await UserRepository(session).get(user_id)

    async def ListUsers(
        self, request: users_pb2.ListUsersRequest, context: Context
    ) -> users_pb2.ListUsersResponse:
        page_size = validation.page_size(request.page_size)
        role = validation.role_name(request.role) if request.role else None
        if role is not None and request.without_roles:
            raise InvalidArgument(
                "role and without_roles exclude each other",
                field="without_roles",
                reason="CONFLICTING_FILTERS",
            )
        is_active = request.is_active if request.HasField("is_active") else None
        async with self._uow.read() as session:
            return await UserRepository(session).list_page(
                page_size,
                request.page_token,
                role=role,
                without_roles=request.without_roles,
                is_active=is_active,
            )

    async def UpdateUser(
        self, request: users_pb2.UpdateUserRequest, context: Context
    ) -> users_pb2.User:
        user_id = validation.parse_id(request.user.id, "user.id")
        paths = validation.update_mask(request.update_mask.paths, USER_UPDATE_PATHS)
        email = validation.email(request.user.email) if "email" in paths else None
        is_active = request.user.is_active if "is_active" in paths else None
        async with self._uow.transaction() as session:
            return await UserRepository(session).update(user_id, email=email, is_active=is_active)

    async def DeleteUser(
        self, request: users_pb2.DeleteUserRequest, context: Context
    ) -> empty_pb2.Empty:
        user_id = validation.parse_id(request.id)
        async with self._uow.transaction() as session:
            await UserRepository(session).delete(user_id, force=request.force)
        return empty_pb2.Empty()
