"""The document read paths are Core statements: they must take their WHERE clause from
docgate.policy (proved by swapping the policy function), and the ORM listener must remain the
safety net for anything written without a filter."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import grpc.aio
import pytest
from docgate.v1 import access_pb2, access_pb2_grpc
from docgate.v1 import documents_pb2 as pb
from sqlalchemy import false, select

from docgate import policy
from docgate.bootstrap import App
from docgate.db.models import Document
from docgate.principal import Principal, acting_as
from tests.conformance.support import Stub, create, fails
from tests.support import make_user, unique


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


async def test_core_read_paths_take_their_predicate_from_the_policy_module(
    app: App, stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await make_user(app, "free_user")
    word = unique("w")
    doc = await create(stub, alice, title=word)
    md = alice.metadata
    calls: list[policy.Audience] = []

    def deny_all(who: policy.Audience, cls: Any, caller: Any) -> Any:
        calls.append(who)
        return (false(),)

    # document_arms is the rule as Core statements take it (document_predicate is their OR).
    monkeypatch.setattr(policy, "document_arms", deny_all)
    await fails(stub.GetDocument(pb.GetDocumentRequest(id=doc.id), metadata=md),
                grpc.StatusCode.NOT_FOUND)  # fmt: skip
    await fails(
        stub.BatchGetDocuments(pb.BatchGetDocumentsRequest(ids=[doc.id]), metadata=md),
        grpc.StatusCode.NOT_FOUND,
    )
    listed = await stub.ListDocuments(
        pb.ListDocumentsRequest(owner_id=str(alice.id), include_total_size=True), metadata=md
    )
    assert (list(listed.documents), listed.total_size) == ([], 0)
    found = await stub.SearchDocuments(pb.SearchDocumentsRequest(query=word), metadata=md)
    assert list(found.documents) == []
    # Predicates are built once per audience, with the caller's id as a bind parameter.
    assert calls == [policy.Audience.FREE]
    monkeypatch.undo()
    assert await stub.GetDocument(pb.GetDocumentRequest(id=doc.id), metadata=md) == doc


async def test_listener_still_filters_an_unfiltered_orm_query(app: App, stub: Stub) -> None:
    """Documents made through the RPCs, read back with an ORM query that names no rule."""
    owner, reader = await make_user(app, "paid_user"), await make_user(app, "free_user")
    word = unique("w")
    visible = await create(stub, owner, title=word, is_public=True)
    for flags in ({}, {"is_public": True, "requires_paid_access": True}):
        await create(stub, owner, title=word, **flags)
    deleted = await create(stub, owner, title=word, is_public=True)
    await stub.DeleteDocument(pb.DeleteDocumentRequest(id=deleted.id), metadata=owner.metadata)
    principal = Principal(reader.id, reader.username, frozenset(reader.roles))
    with acting_as(principal):
        async with app.uow.transaction() as session:
            ids = (await session.scalars(select(Document.id).where(Document.title == word))).all()
    assert ids == [uuid.UUID(visible.id)]


async def test_shared_predicate_binds_each_callers_own_id(app: App, stub: Stub) -> None:
    """Callers with the same roles share one cached predicate; the id is bound per call."""
    first, second = await make_user(app, "free_user"), await make_user(app, "free_user")
    mine, theirs = await create(stub, first), await create(stub, second)
    for user, own, other in ((first, mine, theirs), (second, theirs, mine)):
        got = await stub.GetDocument(pb.GetDocumentRequest(id=own.id), metadata=user.metadata)
        assert got.id == own.id
        await fails(
            stub.GetDocument(pb.GetDocumentRequest(id=other.id), metadata=user.metadata),
            grpc.StatusCode.NOT_FOUND,
        )
        batch = pb.BatchGetDocumentsRequest(ids=[own.id])
        assert len((await stub.BatchGetDocuments(batch, metadata=user.metadata)).documents) == 1
        listed = await stub.ListDocuments(
            pb.ListDocumentsRequest(owner_id=str(other.owner_id)), metadata=user.metadata
        )
        assert list(listed.documents) == []


async def test_the_explanation_takes_its_decision_from_the_same_predicate(
    app: App, stub: Stub, channel: grpc.aio.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ExplainDocumentAccess's decision is the read predicate's value, not a copy of it:
    swapping policy.document_predicate turns the explained user's VISIBLE into HIDDEN, for the
    audience of the user explained (the asker's row filter is the listener's, and unchanged)."""
    owner, admin = await make_user(app, "paid_user"), await make_user(app, "admin")
    doc = await create(stub, owner, is_public=True)
    access = access_pb2_grpc.AccessServiceStub(channel)
    request = access_pb2.ExplainDocumentAccessRequest(document_id=doc.id, user_id=str(owner.id))
    before = await access.ExplainDocumentAccess(request, metadata=admin.metadata)
    assert before.decision == access_pb2.AccessExplanation.VISIBLE
    calls: list[policy.Audience] = []

    def deny_all(who: policy.Audience, cls: Any, caller: Any) -> Any:
        calls.append(who)
        return false()

    monkeypatch.setattr(policy, "document_predicate", deny_all)
    after = await access.ExplainDocumentAccess(request, metadata=admin.metadata)
    assert after.decision == access_pb2.AccessExplanation.HIDDEN
    assert calls == [policy.Audience.PAID]
    assert list(after.rules) == list(before.rules)  # the rules are evaluated on the row
