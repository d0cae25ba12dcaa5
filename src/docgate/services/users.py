"""docgate.v1.UserService."""

from __future__ import annotations

from typing import Any

import grpc.aio

from docgate.auth.principal import require_principal
from docgate.db.uow import UnitOfWork
from docgate.repositories.users import UserRepository
from docgate.v1 import users_pb2, users_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class UserService(users_pb2_grpc.UserServiceServicer):
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def GetCurrentUser(
        self, request: users_pb2.GetCurrentUserRequest, context: Context
    ) -> users_pb2.User:
        principal = require_principal()
        async with self._uow.transaction() as session:
            return await UserRepository(session).get(principal.user_id)
