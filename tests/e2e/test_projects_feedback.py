"""Feedback through the real server: only on ACTIVE projects, scores 1..5 or none, the live
count and average, newest-first pages, who may delete, and GetProject's FULL view."""

from __future__ import annotations

import math

import grpc
import grpc.aio
import pytest
from docgate.v1 import projects_pb2 as pb

from docgate.bootstrap import App
from tests.conformance.projects_support import (
    ACTIVE,
    ARCHIVED,
    COMPLETED,
    DRAFT,
    Stub,
    add_feedback,
    all_feedback,
    get_project,
    name,
    project_in,
    random_id,
)
from tests.conformance.support import DEADLINE
from tests.support import TestUser, count_rows, error_info, expect_error, make_user

CODE = grpc.StatusCode
FEEDBACK_OF = "SELECT count(*) FROM feedback WHERE project_id = :id"


@pytest.fixture(scope="module")
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


def _delete(stub: Stub, user: TestUser, feedback_id: str):  # type: ignore[no-untyped-def]
    request = pb.DeleteFeedbackRequest(id=feedback_id)
    return stub.DeleteFeedback(request, metadata=user.metadata, timeout=DEADLINE)


async def test_feedback_on_an_active_project_from_anyone_who_sees_it(app: App, stub: Stub) -> None:
    alice, bob = await make_user(app), await make_user(app, "free_user")
    project = await project_in(stub, alice, ACTIVE)
    added = await add_feedback(stub, bob, project.id, score=4.5, content="  good  ")
    assert (added.project_id, added.author_id, added.content) == (
        project.id,
        str(bob.id),
        "  good  ",
    )
    assert added.score == 4.5 and added.create_time.seconds > 0 and added.id
    comment = await add_feedback(stub, alice, project.id)
    assert not comment.HasField("score")
    after = await get_project(stub, alice, project.id)
    assert after.etag == project.etag, "feedback is not a change of the project"
    assert (after.feedback_count, after.average_score) == (2, 4.5)


@pytest.mark.parametrize("state", [DRAFT, COMPLETED, ARCHIVED], ids=name)
async def test_no_feedback_unless_active(app: App, stub: Stub, admin: TestUser, state: int) -> None:
    alice, stranger = await make_user(app), await make_user(app)
    project = await project_in(stub, alice, state, archived_from=ACTIVE)
    callers = [alice, admin] + ([stranger] if state == COMPLETED else [])
    for caller in callers:
        error = await expect_error(
            add_feedback(stub, caller, project.id, score=3),
            CODE.FAILED_PRECONDITION,
            "PROJECT_NOT_ACTIVE",
        )
        info = error_info(error)
        assert info is not None and info.metadata["state"] == name(state)
    assert await count_rows(app, FEEDBACK_OF, id=project.id) == 0


@pytest.mark.parametrize(
    ("score", "content", "reason"),
    [
        (0.999, "c", "INVALID_SCORE"),
        (5.0001, "c", "INVALID_SCORE"),
        (0.0, "c", "INVALID_SCORE"),
        (-3.0, "c", "INVALID_SCORE"),
        (math.nan, "c", "INVALID_SCORE"),
        (math.inf, "c", "INVALID_SCORE"),
        (-math.inf, "c", "INVALID_SCORE"),
        (3.0, " \n ", "INVALID_CONTENT"),
        (3.0, "x" * 10_001, "INVALID_CONTENT"),
        (3.0, "a\x00b", "INVALID_CONTENT"),
    ],
)
async def test_bad_feedback_is_refused(
    app: App, stub: Stub, score: float, content: str, reason: str
) -> None:
    alice = await make_user(app)
    project = await project_in(stub, alice, ACTIVE)
    request = pb.AddFeedbackRequest(
        project_id=project.id, feedback=pb.Feedback(content=content, score=score)
    )
    error = await expect_error(
        stub.AddFeedback(request, metadata=alice.metadata), CODE.INVALID_ARGUMENT, reason
    )
    info = error_info(error)
    field = "feedback.score" if reason == "INVALID_SCORE" else "feedback.content"
    assert info is not None and info.metadata["field"] == field
    assert await count_rows(app, FEEDBACK_OF, id=project.id) == 0


async def test_scores_at_the_bounds_and_the_average_of_scored_only(app: App, stub: Stub) -> None:
    alice = await make_user(app)
    project = await project_in(stub, alice, ACTIVE)
    assert project.feedback_count == 0 and not project.HasField("average_score")
    await add_feedback(stub, alice, project.id, content="x" * 10_000)  # a comment, no score
    unscored = await get_project(stub, alice, project.id)
    # One comment and no score: counted, but the average stays unset (not 0).
    assert unscored.feedback_count == 1 and not unscored.HasField("average_score")
    for score in (1.0, 5.0, 2.25):
        await add_feedback(stub, alice, project.id, score=score)
    await add_feedback(stub, alice, project.id)
    got = await get_project(stub, alice, project.id)
    assert (got.feedback_count, got.average_score) == (5, (1.0 + 5.0 + 2.25) / 3)
    listed = await stub.ListProjects(
        pb.ListProjectsRequest(owner_id=str(alice.id)), metadata=alice.metadata
    )
    assert [(p.id, p.feedback_count, p.average_score) for p in listed.projects] == [
        (project.id, 5, got.average_score)
    ]


async def test_list_feedback_newest_first_in_pages(app: App, stub: Stub) -> None:
    alice, bob = await make_user(app), await make_user(app)
    project = await project_in(stub, alice, ACTIVE)
    added = [
        await add_feedback(stub, (alice, bob)[i % 2], project.id, score=i % 5 + 1) for i in range(7)
    ]
    newest_first = sorted(added, key=lambda f: (f.create_time.ToDatetime(), f.id), reverse=True)
    request = pb.ListFeedbackRequest(project_id=project.id, page_size=3)
    pages: list[list[pb.Feedback]] = []
    while True:
        page = await stub.ListFeedback(request, metadata=bob.metadata, timeout=DEADLINE)
        pages.append(list(page.feedback))
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [f for p in pages for f in p] == newest_first
    assert await all_feedback(stub, alice, project.id) == [f.id for f in newest_first]
    # A token belongs to its project.
    first = await stub.ListFeedback(
        pb.ListFeedbackRequest(project_id=project.id, page_size=1), metadata=alice.metadata
    )
    other = await project_in(stub, alice, ACTIVE)
    await add_feedback(stub, alice, other.id)
    elsewhere = pb.ListFeedbackRequest(project_id=other.id, page_token=first.next_page_token)
    await expect_error(
        stub.ListFeedback(elsewhere, metadata=alice.metadata),
        CODE.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )
    negative = pb.ListFeedbackRequest(project_id=project.id, page_size=-1)
    await expect_error(
        stub.ListFeedback(negative, metadata=alice.metadata),
        CODE.INVALID_ARGUMENT,
        "INVALID_PAGE_SIZE",
    )


async def test_feedback_stays_listable_after_the_project_completes(app: App, stub: Stub) -> None:
    alice, bob = await make_user(app), await make_user(app)
    project = await project_in(stub, alice, ACTIVE)
    mine = await add_feedback(stub, bob, project.id, score=2)
    await stub.CompleteProject(pb.CompleteProjectRequest(id=project.id), metadata=alice.metadata)
    assert await all_feedback(stub, bob, project.id) == [mine.id]


async def test_delete_feedback_author_or_admin(app: App, stub: Stub, admin: TestUser) -> None:
    owner, author, other = await make_user(app), await make_user(app), await make_user(app)
    project = await project_in(stub, owner, ACTIVE)
    first = await add_feedback(stub, author, project.id, score=1)
    second = await add_feedback(stub, author, project.id, score=5)
    third = await add_feedback(stub, other, project.id, score=3)
    # Not even the project's owner may delete someone else's feedback.
    for caller in (other, owner):
        await expect_error(
            _delete(stub, caller, first.id), CODE.PERMISSION_DENIED, "NOT_FEEDBACK_AUTHOR"
        )
    await _delete(stub, author, first.id)
    await stub.CompleteProject(pb.CompleteProjectRequest(id=project.id), metadata=owner.metadata)
    await _delete(stub, admin, second.id)  # the state does not matter
    assert await all_feedback(stub, owner, project.id) == [third.id]
    got = await get_project(stub, owner, project.id)
    assert (got.feedback_count, got.average_score) == (1, 3.0)
    for gone in (first.id, random_id()):
        await expect_error(_delete(stub, admin, gone), CODE.NOT_FOUND, "FEEDBACK_NOT_FOUND")
    await expect_error(_delete(stub, admin, "nope"), CODE.INVALID_ARGUMENT, "INVALID_ID")


async def test_full_view_returns_the_newest_twenty(app: App, stub: Stub) -> None:
    alice, bob = await make_user(app), await make_user(app)
    project = await project_in(stub, alice, ACTIVE)
    for i in range(23):
        await add_feedback(stub, bob, project.id, score=None if i % 4 else 2.0)
    listed = await stub.ListFeedback(
        pb.ListFeedbackRequest(project_id=project.id), metadata=bob.metadata
    )
    full = await get_project(stub, bob, project.id, full=True)
    assert list(full.recent_feedback) == list(listed.feedback)[:20]
    assert (full.feedback_count, full.average_score) == (23, 2.0)
    basic = await stub.GetProject(
        pb.GetProjectRequest(id=project.id, view=pb.PROJECT_VIEW_BASIC), metadata=bob.metadata
    )
    default = await get_project(stub, bob, project.id)
    assert basic == default and not basic.recent_feedback
    full.ClearField("recent_feedback")
    assert full == basic
    empty = await get_project(stub, alice, (await project_in(stub, alice, DRAFT)).id, full=True)
    assert not empty.recent_feedback
