"""ListProjects through the real server: what it refuses, tokens bound to their query, and
"average_score desc" pages over averages that are not round numbers."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from docgate.v1 import projects_pb2 as pb

from docgate.bootstrap import App
from tests.conformance.projects_support import ACTIVE, DRAFT, Stub, add_feedback, project_in
from tests.conformance.support import DEADLINE
from tests.support import TestUser, error_info, expect_error, make_user

CODE = grpc.StatusCode


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


async def _all(stub: Stub, user: TestUser, request: pb.ListProjectsRequest) -> list[pb.Project]:
    found: list[pb.Project] = []
    for _ in range(1000):
        page = await stub.ListProjects(request, metadata=user.metadata, timeout=DEADLINE)
        found.extend(page.projects)
        if not page.next_page_token:
            return found
        request.page_token = page.next_page_token
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"page_size": -1}, "page_size", "INVALID_PAGE_SIZE"),
        ({"order_by": "update_time desc"}, "order_by", "INVALID_ORDER_BY"),
        ({"order_by": "name desc"}, "order_by", "INVALID_ORDER_BY"),
        ({"state": 9}, "state", "INVALID_STATE"),
        ({"owner_id": "me"}, "owner_id", "INVALID_ID"),
        ({"page_token": "garbage"}, "page_token", "INVALID_PAGE_TOKEN"),
    ],
)
async def test_bad_list_requests_are_refused(
    app: App, stub: Stub, fields: dict[str, object], field: str, reason: str
) -> None:
    user = await make_user(app)
    request = pb.ListProjectsRequest(**fields)  # type: ignore[arg-type]
    error = await expect_error(
        stub.ListProjects(request, metadata=user.metadata), CODE.INVALID_ARGUMENT, reason
    )
    info = error_info(error)
    assert info is not None and info.metadata["field"] == field


async def test_a_token_belongs_to_its_filters_and_order(app: App, stub: Stub) -> None:
    owner = await make_user(app)
    for _ in range(3):
        await project_in(stub, owner, DRAFT)
    base = {"owner_id": str(owner.id), "page_size": 1}
    first = await stub.ListProjects(pb.ListProjectsRequest(**base), metadata=owner.metadata)
    token = first.next_page_token
    assert token
    for other in ({"order_by": "name"}, {"state": DRAFT}, {"owner_id": ""}):
        request = pb.ListProjectsRequest(**{**base, **other}, page_token=token)  # type: ignore[arg-type]
        await expect_error(
            stub.ListProjects(request, metadata=owner.metadata),
            CODE.INVALID_ARGUMENT,
            "INVALID_PAGE_TOKEN",
        )
    # The page size may change between pages; "create_time desc" is the default spelled out.
    same = {**base, "page_size": 5, "order_by": "create_time desc", "page_token": token}
    rest = await stub.ListProjects(pb.ListProjectsRequest(**same), metadata=owner.metadata)  # type: ignore[arg-type]
    assert len(rest.projects) == 2 and not rest.next_page_token


async def test_average_order_pages_through_fractional_averages(app: App, stub: Stub) -> None:
    owner, critic = await make_user(app), await make_user(app)
    # Averages with long binary expansions (5/3, 4/3, 3.7/3 …), ties among them, and projects
    # with only unscored feedback or none, which come last.
    score_sets = [
        [1, 2, 2],
        [1, 1, 2],
        [2, 2, 1],
        [1.2, 1.3, 1.2],
        [4.9, 3.3],
        [3.3, 4.9],
        [0.1 + 1, 2.2],
        [5],
        [],
        [None],
        [None, None],
        [2.1, 1.1, 1.3],
    ]
    for scores in score_sets:
        project = await project_in(stub, owner, ACTIVE)
        for score in scores:
            await add_feedback(stub, critic, project.id, score=score)
    every = await _all(stub, owner, pb.ListProjectsRequest(owner_id=str(owner.id), page_size=50))
    assert len(every) == len(score_sets)
    expected = sorted(
        every,
        key=lambda p: (p.average_score if p.HasField("average_score") else 0.0, p.id),
        reverse=True,
    )
    for size in (1, 2, 5):
        request = pb.ListProjectsRequest(
            owner_id=str(owner.id), order_by="average_score desc", page_size=size
        )
        assert [p.id for p in await _all(stub, critic, request)] == [p.id for p in expected]
    unscored = [p for p in expected if not p.HasField("average_score")]
    assert expected[-len(unscored) :] == unscored and len(unscored) == 3
