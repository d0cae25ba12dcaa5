"""ListDocuments total_size: exact up to TOTAL_EXACT_UP_TO documents, an estimate above that
is never below TOTAL_EXACT_UP_TO + 1 (document_statements.TOTAL_EXACT_UP_TO)."""

from __future__ import annotations

import uuid

import grpc.aio
import pytest
from docgate.v1 import documents_pb2 as pb
from sqlalchemy import text

from docgate.bootstrap import App
from docgate.principal import SYSTEM, acting_as
from docgate.repositories.document_statements import TOTAL_EXACT_UP_TO
from tests.conformance.support import Stub
from tests.support import make_user

# `count` documents of `owner`, the even-numbered ones public; and `count` deleted ones.
_SEED = text(
    """
    INSERT INTO documents (title, content, owner_id, is_public, is_deleted)
    SELECT 'total ' || i, 'x', :owner, i % 2 = 0, false FROM generate_series(1, :count) AS i
    """
)
_SEED_DELETED = text(
    """
    INSERT INTO documents (title, content, owner_id, is_public, is_deleted, delete_time)
    SELECT 'deleted ' || i, 'x', :owner, true, true, now() FROM generate_series(1, :count) AS i
    """
)


async def _seed(app: App, owner: uuid.UUID, count: int, deleted: int = 0) -> None:
    with acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            await session.execute(_SEED, {"owner": owner, "count": count})
            await session.execute(_SEED_DELETED, {"owner": owner, "count": deleted})


async def _total(stub: Stub, user, **fields) -> int:  # type: ignore[no-untyped-def]
    request = pb.ListDocumentsRequest(page_size=1, include_total_size=True, **fields)
    return (await stub.ListDocuments(request, metadata=user.metadata)).total_size


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


async def test_total_size_is_exact_up_to_the_threshold_and_never_below_it_above(
    app: App, stub: Stub
) -> None:
    alice, bob = await make_user(app, "free_user"), await make_user(app, "free_user")
    admin = await make_user(app, "admin")
    # Exactly the threshold visible to alice; deleted ones on top that nobody counts.
    await _seed(app, alice.id, TOTAL_EXACT_UP_TO, deleted=TOTAL_EXACT_UP_TO // 4)
    mine = {"owner_id": str(alice.id)}
    assert await _total(stub, alice, **mine) == TOTAL_EXACT_UP_TO
    assert await _total(stub, admin, **mine) == TOTAL_EXACT_UP_TO
    # The other arm (someone else's shared documents) and the boolean filters count exactly.
    assert await _total(stub, bob, **mine) == TOTAL_EXACT_UP_TO // 2
    assert await _total(stub, alice, is_public=False, **mine) == TOTAL_EXACT_UP_TO // 2
    assert await _total(stub, alice, requires_paid_access=True, **mine) == 0
    assert await _total(stub, admin, show_deleted=True, **mine) > TOTAL_EXACT_UP_TO
    assert await _total(stub, admin, show_deleted=True, is_public=False, **mine) == (
        TOTAL_EXACT_UP_TO // 2
    )
    # One more: past the exact range the answer is an estimate, but never below its end.
    await _seed(app, alice.id, 1)
    assert await _total(stub, alice, **mine) >= TOTAL_EXACT_UP_TO + 1
    assert await _total(stub, admin, show_deleted=True, **mine) >= TOTAL_EXACT_UP_TO + 1
