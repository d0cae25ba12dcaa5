"""What the load generator sends: pre-serialised requests with each caller's metadata, and the
checks that a target answers them correctly."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence

import jwt
from docgate.v1 import documents_pb2, users_pb2

from bench.baseline import USER_HEADER
from bench.database import Caller
from bench.loadgen import Call, Metadata

GET_CURRENT_USER = "/docgate.v1.UserService/GetCurrentUser"
GET_DOCUMENT = "/docgate.v1.DocumentService/GetDocument"
LIST_DOCUMENTS = "/docgate.v1.DocumentService/ListDocuments"
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


def get_calls(headers: Sequence[Metadata], targets: Sequence[Sequence[str]]) -> tuple[Call, ...]:
    """Round robin over the callers, each asking for documents it may see."""
    per_caller = [
        [(documents_pb2.GetDocumentRequest(id=doc).SerializeToString(), md) for doc in ids]
        for md, ids in zip(headers, targets, strict=True)
    ]
    mixed = itertools.chain.from_iterable(itertools.zip_longest(*per_caller))
    return tuple(call for call in mixed if call is not None)


def describe(method: str, response: bytes) -> str:
    """A short, comparable summary of a response (ids only)."""
    if method == GET_CURRENT_USER:
        user = users_pb2.User.FromString(response)
        return f"{user.id} {sorted(user.roles)}"
    if method == GET_DOCUMENT:
        return documents_pb2.Document.FromString(response).id
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
    else:
        count = len(documents_pb2.ListDocumentsResponse.FromString(response).documents)
        if count != PAGE_SIZE:
            return f"ListDocuments answered {count} documents, expected {PAGE_SIZE}"
    return None
