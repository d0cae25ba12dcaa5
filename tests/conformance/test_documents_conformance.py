"""Every DocumentService read path agrees with a plain-Python oracle of the access rules, and
AccessService's explanations agree with those read paths.

Hypothesis draws small worlds: users with random role sets (none, one, several, custom roles),
documents with random owners, flags, deletion, times and titles. Each world is scoped by a role
made for it and given to every caller, so `owner_role=<marker>` lists exactly this world's
documents whatever else the shared database holds; its documents all contain a marker word for
Search. Every call goes through the real gRPC server.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
import pytest
from docgate.v1 import access_pb2, access_pb2_grpc
from docgate.v1 import documents_pb2 as pb
from google.protobuf import field_mask_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from docgate.bootstrap import App
from docgate.db.models import Document, Role, UserRole
from docgate.principal import SYSTEM, acting_as
from docgate.repositories import document_statements
from tests.conformance.support import DEADLINE, Stub, answer, fails
from tests.support import TestUser, make_user, unique

BUILTIN = ("admin", "paid_user", "free_user")
# Custom role names are made unique per run (role names are global); index into CUSTOM.
CUSTOM = (unique("c"), unique("c"))
ORDERS = {
    "create_time desc": (lambda d: (d.create, d.id), True),
    "create_time": (lambda d: (d.create, d.id), False),
    "update_time desc": (lambda d: (d.update, d.id), True),
    "title": (lambda d: (d.title, d.id), False),
}
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
UNSET_ID = uuid.UUID(int=0)


@dataclass
class Doc:
    owner: int
    is_public: bool
    requires_paid_access: bool
    is_deleted: bool
    create: datetime
    update: datetime
    title: str
    id: uuid.UUID = UNSET_ID  # assigned by the database


@dataclass(frozen=True)
class Caller:
    user: TestUser
    roles: frozenset[str]

    def sees(self, doc: Doc, owner_ids: list[uuid.UUID], show_deleted: bool = False) -> bool:
        """The rules of issue 3, written independently of docgate.policy."""
        admin = "admin" in self.roles
        if doc.is_deleted:
            return show_deleted and admin
        return (
            admin
            or owner_ids[doc.owner] == self.user.id
            or (doc.is_public and ("paid_user" in self.roles or not doc.requires_paid_access))
        )


ROLE_SETS = st.frozensets(st.sampled_from((*BUILTIN, *CUSTOM)), max_size=3)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[frozenset[str]], list[Doc], dict[str, Any]]:
    role_sets = draw(st.lists(ROLE_SETS, min_size=2, max_size=5))
    moments = st.integers(0, 3).map(lambda s: BASE_TIME + timedelta(seconds=s))
    doc = st.builds(
        Doc,
        owner=st.integers(0, len(role_sets) - 1),
        is_public=st.booleans(),
        requires_paid_access=st.booleans(),
        is_deleted=st.booleans().flatmap(lambda b: st.just(b) if b else st.booleans()),
        create=moments,
        update=moments,
        title=st.text(alphabet="abc", min_size=1, max_size=3),
    )
    docs = draw(st.lists(doc, max_size=12))
    filters = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "is_public": st.booleans(),
                "requires_paid_access": st.booleans(),
                "owner": st.integers(0, len(role_sets) - 1),
            },
        )
    )
    return role_sets, docs, filters


@pytest.fixture(scope="module")
async def custom_roles(app: App) -> None:
    with acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            await session.execute(insert(Role), [{"name": name} for name in CUSTOM])


async def _build(
    app: App, role_sets: list[frozenset[str]], docs: list[Doc]
) -> tuple[list[Caller], str, str]:
    """Users, a marker role for every caller (owner_role names only a role the caller holds;
    only owners' documents carry it, and a custom role changes no one's visibility), the
    documents (with a marker word)."""
    callers = [Caller(await make_user(app, *roles), roles) for roles in role_sets]
    marker, word = unique("m"), unique("w")
    with acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            role_id = (
                await session.execute(insert(Role).values(name=marker).returning(Role.id))
            ).scalar_one()
            if callers:
                await session.execute(
                    insert(UserRole),
                    [{"user_id": caller.user.id, "role_id": role_id} for caller in callers],
                )
            for d in docs:
                d.id = (
                    await session.execute(
                        insert(Document)
                        .values(
                            owner_id=callers[d.owner].user.id, title=d.title,
                            content=f"{word} {d.title}", is_public=d.is_public,
                            requires_paid_access=d.requires_paid_access, is_deleted=d.is_deleted,
                            delete_time=d.update if d.is_deleted else None,
                            create_time=d.create, update_time=d.update,
                        )
                        .returning(Document.id)
                    )
                ).scalar_one()  # fmt: skip
    return callers, marker, word


async def _pages(stub: Stub, md: Any, request: Any, method: str) -> tuple[list[str], int]:
    ids: list[str] = []
    total = -1
    call = getattr(stub, method)
    for _ in range(200):
        page = await call(request, metadata=md, timeout=DEADLINE)
        ids.extend(d.id for d in page.documents)
        total = getattr(page, "total_size", -1)
        if not page.next_page_token:
            return ids, total
        request.page_token = page.next_page_token
    raise AssertionError("pagination did not end")


async def _check_get(stub: Stub, caller: Caller, docs: list[Doc], owner_ids: list[uuid.UUID],
                     absent: tuple[Any, ...]) -> None:  # fmt: skip
    md = caller.user.metadata
    for d in docs:
        for show_deleted in (False, True) if "admin" in caller.roles else (False,):
            request = pb.GetDocumentRequest(id=str(d.id), show_deleted=show_deleted)
            if caller.sees(d, owner_ids, show_deleted):
                got = await stub.GetDocument(request, metadata=md, timeout=DEADLINE)
                assert (got.id, got.owner_id, got.is_public, got.requires_paid_access,
                        got.HasField("delete_time")) == (str(d.id), str(owner_ids[d.owner]),
                        d.is_public, d.requires_paid_access, d.is_deleted)  # fmt: skip
            else:
                error = await fails(
                    stub.GetDocument(request, metadata=md), grpc.StatusCode.NOT_FOUND
                )
                assert answer(error) == absent
    visible = [str(d.id) for d in docs if caller.sees(d, owner_ids)]
    if visible:
        batch = pb.BatchGetDocumentsRequest(ids=visible[::-1])
        reply = await stub.BatchGetDocuments(batch, metadata=md, timeout=DEADLINE)
        assert [d.id for d in reply.documents] == visible[::-1]
    if len(visible) < len(docs):
        batch = pb.BatchGetDocumentsRequest(ids=[str(d.id) for d in docs])
        error = await fails(stub.BatchGetDocuments(batch, metadata=md), grpc.StatusCode.NOT_FOUND)
        assert answer(error) == absent


async def _check_list(stub: Stub, caller: Caller, docs: list[Doc], owner_ids: list[uuid.UUID],
                      marker: str, filters: dict[str, Any]) -> None:  # fmt: skip
    md = caller.user.metadata
    for show_deleted in (False, True) if "admin" in caller.roles else (False,):
        wanted = [
            d for d in docs
            if caller.sees(d, owner_ids, show_deleted)
            and all(getattr(d, k) == v for k, v in filters.items())
        ]  # fmt: skip
        fields = {k: v for k, v in filters.items() if k != "owner"}
        if "owner" in filters:
            fields["owner_id"] = str(owner_ids[filters["owner"]])
        # owner_role's two forms: its few holders' index ranges, or the IN filter on the scan.
        for few, (order_by, (key, descending)) in itertools.product((16, 0), ORDERS.items()):
            expected = [str(d.id) for d in sorted(wanted, key=key, reverse=descending)]
            for size in (1, 7, 0) if few else (2,):
                request = pb.ListDocumentsRequest(
                    owner_role=marker, order_by=order_by, page_size=size, show_deleted=show_deleted,
                    include_total_size=True, **fields,
                )  # fmt: skip
                with pytest.MonkeyPatch.context() as patch:
                    patch.setattr(document_statements, "FEW_HOLDERS", few)
                    ids, total = await _pages(stub, md, request, "ListDocuments")
                assert ids == expected, (order_by, size, show_deleted, filters, few)
                assert total == len(expected)


async def _check_search(stub: Stub, caller: Caller, docs: list[Doc], owner_ids: list[uuid.UUID],
                        word: str) -> None:  # fmt: skip
    """Newest first (create_time, id descending), through both of Search's statements: a window
    of one row sends nearly every page to the GIN statement, a window larger than the database
    serves every full page from the index range."""
    visible = [d for d in docs if caller.sees(d, owner_ids)]
    expected = [str(d.id) for d in sorted(visible, key=lambda d: (d.create, d.id), reverse=True)]
    for window in (1, 10**6):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(document_statements, "SEARCH_WINDOW", window)
            for size in (1, 2, 0):
                request = pb.SearchDocumentsRequest(query=word, page_size=size)
                ids, _ = await _pages(stub, caller.user.metadata, request, "SearchDocuments")
                assert ids == expected, (window, size)


async def _succeeds(call: Any) -> bool:
    """Whether the call is answered OK; a refusal must be one of the two the policy gives."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        code = error.code()
    else:
        return True
    assert code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED), code
    return False


async def _check_explain(stub: Stub, access: Any, explainer: TestUser, caller: Caller,
                         docs: list[Doc], absent: tuple[Any, ...]) -> None:  # fmt: skip
    """ExplainDocumentAccess against the real read and write paths (issue 15): decision is
    VISIBLE exactly when GetDocument succeeds for the caller, and can_update exactly when
    UpdateDocument does. An admin asks about the caller; the caller asks about themselves and
    gets the same answer, or (when they cannot see it and are no admin) the NOT_FOUND of a
    missing id. The updates run last: they change update_time, which the other checks read."""
    md, visible = caller.user.metadata, access_pb2.AccessExplanation.VISIBLE
    explained = []
    for d in docs:
        get = stub.GetDocument(pb.GetDocumentRequest(id=str(d.id)), metadata=md, timeout=DEADLINE)
        readable = await _succeeds(get)
        request = access_pb2.ExplainDocumentAccessRequest(
            document_id=str(d.id), user_id=str(caller.user.id)
        )
        about = await access.ExplainDocumentAccess(request, metadata=explainer.metadata)
        assert (about.decision == visible) == readable, (d, caller.roles, about)
        assert about.can_delete == about.can_update
        own = access.ExplainDocumentAccess(
            access_pb2.ExplainDocumentAccessRequest(document_id=str(d.id)), metadata=md
        )
        if readable or "admin" in caller.roles:
            assert await own == about
        else:
            assert answer(await fails(own, grpc.StatusCode.NOT_FOUND)) == absent
        explained.append((d, about))
    for d, about in explained:
        update = pb.UpdateDocumentRequest(
            document=pb.Document(id=str(d.id), title=d.title),
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        )
        updated = await _succeeds(stub.UpdateDocument(update, metadata=md, timeout=DEADLINE))
        assert updated == about.can_update, (d, caller.roles, about)


@pytest.mark.usefixtures("custom_roles")
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(world=worlds())
async def test_every_read_path_agrees_with_the_oracle(
    app: App,
    channel: grpc.aio.Channel,
    world: tuple[list[frozenset[str]], list[Doc], dict[str, Any]],
) -> None:
    role_sets, docs, filters = world
    stub = Stub(channel)
    callers, marker, word = await _build(app, role_sets, docs)
    owner_ids = [c.user.id for c in callers]
    missing = pb.GetDocumentRequest(id=str(uuid.uuid4()))
    absent = answer(
        await fails(stub.GetDocument(missing, metadata=callers[0].user.metadata),
                    grpc.StatusCode.NOT_FOUND)
    )  # fmt: skip
    for caller in callers:
        await _check_get(stub, caller, docs, owner_ids, absent)
        await _check_list(stub, caller, docs, owner_ids, marker, filters)
        await _check_search(stub, caller, docs, owner_ids, word)
    access, explainer = access_pb2_grpc.AccessServiceStub(channel), await make_user(app, "admin")
    missing_explained = access.ExplainDocumentAccess(
        access_pb2.ExplainDocumentAccessRequest(document_id=missing.id),
        metadata=callers[0].user.metadata,
    )
    absent_explained = answer(await fails(missing_explained, grpc.StatusCode.NOT_FOUND))
    for caller in callers:
        await _check_explain(stub, access, explainer, caller, docs, absent_explained)
