"""Project rules in docgate.policy against the issue's words: the lifecycle over all 16
(from, to) pairs for owner, admin and stranger, who may change a project, and the shape of the
visibility predicate."""

from __future__ import annotations

import itertools
import uuid

import pytest
from docgate.v1 import projects_pb2
from sqlalchemy import bindparam, select

from docgate import policy
from docgate.db.models import Project
from docgate.errors import FailedPrecondition
from docgate.policy import ProjectState, StateChange
from docgate.principal import Principal

S = ProjectState
OWNER_ID = uuid.uuid4()
CALLERS = {
    "owner": Principal(OWNER_ID, "owner", frozenset({"free_user"})),
    "admin": Principal(uuid.uuid4(), "admin", frozenset({"admin"})),
    "stranger": Principal(uuid.uuid4(), "stranger", frozenset({"paid_user"})),
}
# The issue: ActivateProject DRAFT→ACTIVE, CompleteProject ACTIVE→COMPLETED, ArchiveProject
# DRAFT|ACTIVE|COMPLETED→ARCHIVED, RestoreProject ARCHIVED→the state it was archived from.
ORACLE: dict[tuple[ProjectState, ProjectState], StateChange] = {
    (S.DRAFT, S.ACTIVE): StateChange.ACTIVATE,
    (S.ACTIVE, S.COMPLETED): StateChange.COMPLETE,
    (S.DRAFT, S.ARCHIVED): StateChange.ARCHIVE,
    (S.ACTIVE, S.ARCHIVED): StateChange.ARCHIVE,
    (S.COMPLETED, S.ARCHIVED): StateChange.ARCHIVE,
    (S.ARCHIVED, S.DRAFT): StateChange.RESTORE,
    (S.ARCHIVED, S.ACTIVE): StateChange.RESTORE,
    (S.ARCHIVED, S.COMPLETED): StateChange.RESTORE,
}


def archived_froms(current: ProjectState) -> list[ProjectState | None]:
    """The archived_from values a stored row in ``current`` can have (the schema's CHECKs)."""
    if current is S.ARCHIVED:
        return [S.DRAFT, S.ACTIVE, S.COMPLETED]
    return [None]


def reachable(
    who: Principal, current: ProjectState, target: ProjectState
) -> set[tuple[StateChange, ProjectState | None]]:
    """Every (method, archived_from) with which ``who`` moves a project from current to
    target, by the policy functions alone."""
    found = set()
    if not policy.may_modify_project(who, OWNER_ID):
        return found
    for method in StateChange:
        for archived_from in archived_froms(current):
            try:
                if policy.next_state(method, current, archived_from) is target:
                    found.add((method, archived_from))
            except FailedPrecondition:
                pass
    return found


PAIRS = list(itertools.product(ProjectState, repeat=2))


def test_there_are_16_pairs() -> None:
    assert len(PAIRS) == 16


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("current", "target"), PAIRS, ids=lambda s: s.name)
def test_transition_table(caller: str, current: ProjectState, target: ProjectState) -> None:
    got = reachable(CALLERS[caller], current, target)
    method = ORACLE.get((current, target))
    if caller == "stranger" or method is None:
        assert got == set()
    elif method is StateChange.RESTORE:
        assert got == {(StateChange.RESTORE, target)}  # only back where it came from
    else:
        assert got == {(method, None)}


@pytest.mark.parametrize("method", StateChange, ids=lambda m: m.value)
@pytest.mark.parametrize("current", ProjectState, ids=lambda s: s.name)
def test_a_refused_change_names_the_current_state(
    method: StateChange, current: ProjectState
) -> None:
    allowed = {c for (c, _), m in ORACLE.items() if m is method}
    for archived_from in archived_froms(current):
        if current in allowed:
            policy.next_state(method, current, archived_from)
            continue
        with pytest.raises(FailedPrecondition) as caught:
            policy.next_state(method, current, archived_from)
        assert caught.value.reason == "INVALID_STATE_TRANSITION"
        assert caught.value.metadata == {"state": current.name}
        assert method.value in caught.value.message


def test_the_table_is_the_oracle() -> None:
    derived = {}
    for method, (sources, target) in policy.TRANSITIONS.items():
        for source in sources:
            # None: back to archived_from, which can be any state a project is archived from.
            targets = [target] if target is not None else archived_froms(source)
            derived |= {(source, t): method for t in targets if t is not None}
    assert derived == ORACLE


@pytest.mark.parametrize("archived_from", [None, S.ARCHIVED])
def test_restore_refuses_an_impossible_row(archived_from: ProjectState | None) -> None:
    with pytest.raises(ValueError, match="archived_from"):
        policy.next_state(StateChange.RESTORE, S.ARCHIVED, archived_from)


@pytest.mark.parametrize(("current", "target"), list(ORACLE), ids=lambda s: s.name)
def test_archived_from_after_keeps_the_schema_check(
    current: ProjectState, target: ProjectState
) -> None:
    archived_from = policy.archived_from_after(current, target)
    # CHECK (state = 'archived') = (archived_from IS NOT NULL) AND archived_from <> 'archived'
    assert (target is S.ARCHIVED) == (archived_from is not None)
    assert archived_from is not S.ARCHIVED
    if target is S.ARCHIVED:
        assert policy.next_state(StateChange.RESTORE, target, archived_from) is current


def test_may_modify_project() -> None:
    assert policy.may_modify_project(CALLERS["owner"], OWNER_ID)
    assert policy.may_modify_project(CALLERS["admin"], OWNER_ID)
    assert not policy.may_modify_project(CALLERS["stranger"], OWNER_ID)


def test_names_agree_with_the_contract() -> None:
    """StateChange values are the RPC names; ProjectState names are Project.State's."""
    service = projects_pb2.DESCRIPTOR.services_by_name["ProjectService"]
    assert {m.value for m in StateChange} <= set(service.methods_by_name)
    api_states = set(projects_pb2.Project.State.keys()) - {"STATE_UNSPECIFIED"}
    assert {s.name for s in ProjectState} == api_states


def test_shared_states() -> None:
    assert {S.ACTIVE, S.COMPLETED} == policy.SHARED_PROJECT_STATES


@pytest.mark.parametrize(
    ("principal", "audience"),
    [
        (None, policy.ProjectAudience.NOBODY),
        (CALLERS["owner"], policy.ProjectAudience.MEMBER),
        (CALLERS["stranger"], policy.ProjectAudience.MEMBER),
        (Principal(uuid.uuid4(), "custom", frozenset()), policy.ProjectAudience.MEMBER),
        (CALLERS["admin"], policy.ProjectAudience.ADMIN),
    ],
)
def test_audience(principal: Principal | None, audience: policy.ProjectAudience) -> None:
    assert policy.project_audience(principal) is audience


@pytest.mark.parametrize("who", policy.ProjectAudience)
def test_the_callers_id_is_the_only_bound_value(who: policy.ProjectAudience) -> None:
    """One statement per audience: states are literals, the caller a named parameter."""
    statement = select(Project.id).where(
        policy.project_predicate(who, Project, bindparam("caller"))
    )
    params = set(statement.compile().params)
    assert params == ({"caller"} if who is policy.ProjectAudience.MEMBER else set())
