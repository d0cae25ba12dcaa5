"""What the load generator sends: pre-serialised requests with each caller's metadata, and the
checks that a target answers them correctly."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence

import jwt
from docgate.v1 import documents_pb2, projects_pb2, users_pb2

from bench.baseline import USER_HEADER
from bench.database import Caller
from bench.loadgen import Call, Metadata
from bench.projects import FEEDBACK_PER_PROJECT

GET_CURRENT_USER = "/docgate.v1.UserService/GetCurrentUser"
GET_DOCUMENT = "/docgate.v1.DocumentService/GetDocument"
LIST_DOCUMENTS = "/docgate.v1.DocumentService/ListDocuments"
CREATE_DOCUMENT = "/docgate.v1.DocumentService/CreateDocument"
GET_PROJECT = "/docgate.v1.ProjectService/GetProject"
LIST_PROJECTS = "/docgate.v1.ProjectService/ListProjects"
PAGE_SIZE = 50
TOKEN_TTL_S = 4 * 3600


def metadata(caller: Caller, secret: str) -> Metadata:
    """The same headers go to both servers: docgate reads the token, the baseline the id."""
    now = int(time.time())
    token = jwt.encode(
        {"sub": caller.user_id, "iat": now, "exp": now + TOKEN_TTL_S}, secret, algorithm="HS256"
    )
    return (("authorization", f"Bearer {token}"), (USER_HEADER, caller.user_id))


def current_user_calls(headers: Sequence[Metadata]) -> tuple[Call, ...]:
    request = users_pb2.GetCurrentUserRequest().SerializeToString()
    return tuple((request, md) for md in headers)


def list_calls(headers: Sequence[Metadata]) -> tuple[Call, ...]:
    request = documents_pb2.ListDocumentsRequest(page_size=PAGE_SIZE).SerializeToString()
    return tuple((request, md) for md in headers)


def create_calls(headers: Sequence[Metadata]) -> tuple[Call, ...]:
    """One public 200-character document per caller, created again on every call."""
    doc = documents_pb2.Document(title="bench write", content="w" * 200, is_public=True)
    request = documents_pb2.CreateDocumentRequest(document=doc).SerializeToString()
    return tuple((request, md) for md in headers)


def list_project_calls(headers: Sequence[Metadata]) -> tuple[Call, ...]:
    request = projects_pb2.ListProjectsRequest(page_size=PAGE_SIZE).SerializeToString()
    return tuple((request, md) for md in headers)


def _round_robin(per_caller: Sequence[Sequence[Call]]) -> tuple[Call, ...]:
    mixed = itertools.chain.from_iterable(itertools.zip_longest(*per_caller))
    return tuple(call for call in mixed if call is not None)


def get_calls(headers: Sequence[Metadata], targets: Sequence[Sequence[str]]) -> tuple[Call, ...]:
    """Round robin over the callers, each asking for documents it may see."""
    return _round_robin(
        [
            [(documents_pb2.GetDocumentRequest(id=doc).SerializeToString(), md) for doc in ids]
            for md, ids in zip(headers, targets, strict=True)
        ]
    )


def get_project_calls(
    headers: Sequence[Metadata], targets: Sequence[Sequence[str]]
) -> tuple[Call, ...]:
    """Round robin over the callers, each asking for projects it may see."""
    return _round_robin(
        [
            [(projects_pb2.GetProjectRequest(id=p).SerializeToString(), md) for p in ids]
            for md, ids in zip(headers, targets, strict=True)
        ]
    )


def _project_summary(project: projects_pb2.Project) -> str:
    """id, feedback count and average: the aggregates are compared between servers too."""
    average = f"{project.average_score:.6g}" if project.HasField("average_score") else "-"
    return f"{project.id}:{project.feedback_count}:{average}"


def describe(method: str, response: bytes) -> str:
    """A short, comparable summary of a response (ids only)."""
    if method == GET_CURRENT_USER:
        user = users_pb2.User.FromString(response)
        return f"{user.id} {sorted(user.roles)}"
    if method == GET_DOCUMENT:
        return documents_pb2.Document.FromString(response).id
    if method == GET_PROJECT:
        return _project_summary(projects_pb2.Project.FromString(response))
    if method == LIST_PROJECTS:
        projects = projects_pb2.ListProjectsResponse.FromString(response).projects
        return " ".join(_project_summary(project) for project in projects)
    page = documents_pb2.ListDocumentsResponse.FromString(response)
    return " ".join(doc.id for doc in page.documents)


def check(method: str, call: Call, response: bytes, callers: Mapping[str, Caller]) -> str | None:
    """None when ``response`` answers ``call`` plausibly, else what is wrong."""
    request, md = call
    caller = callers[dict(md)[USER_HEADER]]
    if method == GET_CURRENT_USER:
        user = users_pb2.User.FromString(response)
        if user.id != caller.user_id or caller.role not in user.roles:
            return f"GetCurrentUser answered {user.id} {list(user.roles)} for {caller}"
    elif method == GET_DOCUMENT:
        wanted = documents_pb2.GetDocumentRequest.FromString(request).id
        if documents_pb2.Document.FromString(response).id != wanted:
            return f"GetDocument answered another document than {wanted}"
    elif method == GET_PROJECT:
        wanted = projects_pb2.GetProjectRequest.FromString(request).id
        found = projects_pb2.Project.FromString(response)
        if found.id != wanted:
            return f"GetProject answered another project than {wanted}"
        return _feedback_problem([found])
    elif method == LIST_PROJECTS:
        page = projects_pb2.ListProjectsResponse.FromString(response)
        count = len(page.projects)
        if count != PAGE_SIZE or not page.next_page_token:
            return f"ListProjects answered {count} projects, expected {PAGE_SIZE} and a token"
        return _feedback_problem(page.projects)
    else:
        count = len(documents_pb2.ListDocumentsResponse.FromString(response).documents)
        if count != PAGE_SIZE:
            return f"ListDocuments answered {count} documents, expected {PAGE_SIZE}"
    return None


def _feedback_problem(projects: Sequence[projects_pb2.Project]) -> str | None:
    """Every seeded project has FEEDBACK_PER_PROJECT items; an average lies within 1..5."""
    for project in projects:
        if project.feedback_count != FEEDBACK_PER_PROJECT:
            return f"project {project.id} has feedback_count {project.feedback_count}"
        if project.HasField("average_score") and not 1 <= project.average_score <= 5:
            return f"project {project.id} has average_score {project.average_score}"
    return None
