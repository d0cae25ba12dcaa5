"""The raw baseline: a minimal grpc.aio server answering docgate's messages straight from
asyncpg (no auth, no ORM, no unit of work). Run as ``python -m bench.baseline DSN HOST:PORT``.

It trusts the caller id in the ``x-bench-user-id`` header and knows every user's roles from a
map loaded at start, so its SQL is the cheapest equivalent of docgate's: the same rows, the same
visibility predicate, the same messages.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import sys
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg
import grpc
import grpc.aio
from docgate.v1 import (
    documents_pb2,
    documents_pb2_grpc,
    projects_pb2,
    projects_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
)
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from bench.baseline_sql import (
    GET_PROJECT_SQL,
    GET_SQL,
    LIST_PROJECTS_SQL,
    LIST_SQL,
    PAGE_SIZE,
    ROLES_SQL,
    USER_SQL,
)

USER_HEADER = "x-bench-user-id"
# docgate's default pool: pool_size 10 + max_overflow 10.
POOL_MIN, POOL_MAX = 10, 20


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def document(row: asyncpg.Record) -> documents_pb2.Document:
    doc = documents_pb2.Document(
        id=str(row["id"]),
        title=row["title"],
        content=row["content"],
        owner_id=str(row["owner_id"]),
        is_public=row["is_public"],
        requires_paid_access=row["requires_paid_access"],
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
        etag=f'W/"{row["version"]}"',
    )
    if row["delete_time"] is not None:
        doc.delete_time.CopyFrom(timestamp(row["delete_time"]))
    return doc


def project(row: asyncpg.Record) -> projects_pb2.Project:
    message = projects_pb2.Project(
        id=str(row["id"]),
        name=row["name"],
        description=row["description"],
        state=projects_pb2.Project.State.Value(row["state"].upper()),
        owner_id=str(row["owner_id"]),
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
        etag=f'W/"{row["version"]}"',
        feedback_count=row["feedback_count"],
    )
    if row["average_score"] is not None:
        message.average_score = row["average_score"]
    return message


def page_token(row: asyncpg.Record) -> str:
    raw = f"{row['create_time'].isoformat()}|{row['id']}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def role_of(roles: list[str]) -> str:
    for role in ("admin", "paid_user"):
        if role in roles:
            return role
    return "free_user"


class Caller:
    """Who calls, read from the trusted bench header (no token verification)."""

    def __init__(self, roles: Mapping[uuid.UUID, str]) -> None:
        self._roles = roles

    async def __call__(self, context: grpc.aio.ServicerContext[Any, Any]) -> tuple[uuid.UUID, str]:
        for key, value in context.invocation_metadata() or ():
            if key == USER_HEADER:
                user_id = uuid.UUID(str(value))
                return user_id, self._roles.get(user_id, "free_user")
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing caller")
        raise AssertionError("abort returns never")


class Users(users_pb2_grpc.UserServiceServicer):
    def __init__(self, pool: asyncpg.Pool, caller: Caller) -> None:
        self._pool = pool
        self._caller = caller

    async def GetCurrentUser(
        self, request: users_pb2.GetCurrentUserRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> users_pb2.User:
        user_id, _ = await self._caller(context)
        row = await self._pool.fetchrow(USER_SQL, user_id)
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "user not found")
        return users_pb2.User(
            id=str(row["id"]),
            username=row["username"],
            email=row["email"],
            is_active=row["is_active"],
            roles=row["roles"],
            create_time=timestamp(row["create_time"]),
            update_time=timestamp(row["update_time"]),
        )


class Documents(documents_pb2_grpc.DocumentServiceServicer):
    def __init__(self, pool: asyncpg.Pool, caller: Caller) -> None:
        self._pool = pool
        self._caller = caller

    async def GetDocument(
        self, request: documents_pb2.GetDocumentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> documents_pb2.Document:
        user_id, role = await self._caller(context)
        try:
            doc_id = uuid.UUID(request.id)
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "id must be a UUID")
        args = (doc_id,) if role == "admin" else (doc_id, user_id)
        row = await self._pool.fetchrow(GET_SQL[role], *args)
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "document not found")
        return document(row)

    async def ListDocuments(
        self,
        request: documents_pb2.ListDocumentsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> documents_pb2.ListDocumentsResponse:
        user_id, role = await self._caller(context)
        args = () if role == "admin" else (user_id,)
        rows = await self._pool.fetch(LIST_SQL[role], *args)
        response = documents_pb2.ListDocumentsResponse(
            documents=[document(row) for row in rows[:PAGE_SIZE]]
        )
        if len(rows) > PAGE_SIZE:
            response.next_page_token = page_token(rows[PAGE_SIZE - 1])
        return response


class Projects(projects_pb2_grpc.ProjectServiceServicer):
    """GetProject (the BASIC view) and the first page of ListProjects in the default order."""

    def __init__(self, pool: asyncpg.Pool, caller: Caller) -> None:
        self._pool = pool
        self._caller = caller

    async def GetProject(
        self, request: projects_pb2.GetProjectRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> projects_pb2.Project:
        user_id, role = await self._caller(context)
        if request.view == projects_pb2.PROJECT_VIEW_FULL:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the baseline has no FULL view")
        try:
            project_id = uuid.UUID(request.id)
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "id must be a UUID")
        args = (project_id,) if role == "admin" else (project_id, user_id)
        row = await self._pool.fetchrow(GET_PROJECT_SQL[role], *args)
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "project not found")
        return project(row)

    async def ListProjects(
        self,
        request: projects_pb2.ListProjectsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> projects_pb2.ListProjectsResponse:
        user_id, role = await self._caller(context)
        args = () if role == "admin" else (user_id,)
        rows = await self._pool.fetch(LIST_PROJECTS_SQL[role], *args)
        response = projects_pb2.ListProjectsResponse(
            projects=[project(row) for row in rows[:PAGE_SIZE]]
        )
        if len(rows) > PAGE_SIZE:
            response.next_page_token = page_token(rows[PAGE_SIZE - 1])
        return response


async def load_roles(pool: asyncpg.Pool) -> dict[uuid.UUID, str]:
    rows = await pool.fetch(ROLES_SQL)
    return {row["user_id"]: role_of(row["roles"]) for row in rows}


async def serve(dsn: str, listen: str) -> None:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=POOL_MIN,
        max_size=POOL_MAX,
        server_settings={"application_name": "docgate-bench-baseline"},
    )
    caller = Caller(await load_roles(pool))
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    # Only the measured RPCs are implemented; the others keep the generated UNIMPLEMENTED.
    users = Users(pool, caller)  # type: ignore[abstract]
    documents = Documents(pool, caller)  # type: ignore[abstract]
    projects = Projects(pool, caller)  # type: ignore[abstract]
    users_pb2_grpc.add_UserServiceServicer_to_server(users, server)
    documents_pb2_grpc.add_DocumentServiceServicer_to_server(documents, server)
    projects_pb2_grpc.add_ProjectServiceServicer_to_server(projects, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if server.add_insecure_port(listen) == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)
    await pool.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.baseline DSN HOST:PORT", file=sys.stderr)
        return 2
    asyncio.run(serve(argv[0], argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
