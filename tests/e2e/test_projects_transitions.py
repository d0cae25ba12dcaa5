"""The lifecycle table through the real server: every (from state, method) pair — ARCHIVED
once per state it was archived from — for the owner, an admin and a stranger, against an
oracle written from the issue's words (not from docgate.policy)."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from docgate.bootstrap import App
from tests.conformance.projects_support import (
    ACTIVE,
    ARCHIVED,
    COMPLETED,
    DRAFT,
    SHARED,
    STATE_METHODS,
    Stub,
    change,
    get_project,
    name,
    project_in,
    random_id,
)
from tests.conformance.support import answer
from tests.support import TestUser, error_info, expect_error, make_user

CODE = grpc.StatusCode
RESTORED = "the state it was archived from"
# The issue: "ActivateProject DRAFT→ACTIVE, CompleteProject ACTIVE→COMPLETED, ArchiveProject
# DRAFT|ACTIVE|COMPLETED→ARCHIVED, RestoreProject ARCHIVED→the state it was archived from. Any
# other transition is FAILED_PRECONDITION … Owner or admin only."
ISSUE: dict[str, tuple[set[int], int | str]] = {
    "ActivateProject": ({DRAFT}, ACTIVE),
    "CompleteProject": ({ACTIVE}, COMPLETED),
    "ArchiveProject": ({DRAFT, ACTIVE, COMPLETED}, ARCHIVED),
    "RestoreProject": ({ARCHIVED}, RESTORED),
}
# (state, archived_from): the four states, ARCHIVED from each of the three others.
STARTS = [(DRAFT, None), (ACTIVE, None), (COMPLETED, None)] + [
    (ARCHIVED, left) for left in (DRAFT, ACTIVE, COMPLETED)
]


def expected(state: int, archived_from: int | None, method: str) -> int | None:
    """The state ``method`` leads to from ``state``; None when it is not a transition."""
    sources, target = ISSUE[method]
    if state not in sources:
        return None
    return archived_from if target == RESTORED else target  # type: ignore[return-value]


def _start_id(start: tuple[int, int | None]) -> str:
    state, left = start
    return name(state) + (f"-from-{name(left)}" if left is not None else "")


def test_the_oracle_covers_all_sixteen_pairs() -> None:
    pairs = {(state, method) for state, _ in STARTS for method in STATE_METHODS}
    assert len(pairs) == 16
    allowed = {(s, m) for s, m in pairs if expected(s, ACTIVE, m) is not None}
    assert len(allowed) == 6  # activate 1, complete 1, archive 3, restore 1


@pytest.mark.parametrize("caller", ["owner", "admin", "stranger"])
@pytest.mark.parametrize("method", list(STATE_METHODS))
@pytest.mark.parametrize("start", STARTS, ids=_start_id)
async def test_transition(
    app: App,
    channel: grpc.aio.Channel,
    admin: TestUser,
    start: tuple[int, int | None],
    method: str,
    caller: str,
) -> None:
    stub = Stub(channel)
    state, archived_from = start
    owner = await make_user(app, "free_user")
    project = await project_in(stub, owner, state, archived_from=archived_from or DRAFT)
    who = {"owner": owner, "admin": admin, "stranger": await make_user(app, "paid_user")}[caller]
    if caller == "stranger":
        if state in SHARED:
            await expect_error(
                change(stub, who, method, project.id), CODE.PERMISSION_DENIED, "NOT_PROJECT_OWNER"
            )
        else:  # hidden: byte-identical to a project that does not exist
            missing = await expect_error(change(stub, who, method, random_id()), CODE.NOT_FOUND)
            hidden = await expect_error(change(stub, who, method, project.id), CODE.NOT_FOUND)
            assert answer(hidden) == answer(missing)
        assert await get_project(stub, owner, project.id) == project
        return
    target = expected(state, archived_from, method)
    if target is None:
        error = await expect_error(
            change(stub, who, method, project.id, project.etag),
            CODE.FAILED_PRECONDITION,
            "INVALID_STATE_TRANSITION",
        )
        info = error_info(error)
        assert info is not None and dict(info.metadata) == {"state": name(state)}
        assert await get_project(stub, owner, project.id) == project
        return
    moved = await change(stub, who, method, project.id, project.etag)
    assert moved.state == target
    assert moved.etag != project.etag and moved.owner_id == str(owner.id)
    assert await get_project(stub, owner, project.id) == moved
