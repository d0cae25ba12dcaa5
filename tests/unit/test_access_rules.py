"""The rule lists of docgate.policy: the read predicates derived from them keep their SQL
shape per audience, and the explanation of every combination agrees with the predicate and
with a plain-Python oracle of the issue's rules."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql

from docgate import policy
from docgate.db.models import Document, Project
from docgate.principal import Principal

CALLER = bindparam("caller")
# The clauses the read paths ran before the policy was a rule list (their prepared shapes).
DOCUMENT_SQL = {
    policy.Audience.NOBODY: "false",
    policy.Audience.FREE: "documents.is_deleted = false AND (documents.owner_id = "
    "%(caller)s::UUID OR documents.is_public = true AND documents.requires_paid_access = false)",
    policy.Audience.PAID: "documents.is_deleted = false AND (documents.owner_id = "
    "%(caller)s::UUID OR documents.is_public = true)",
    policy.Audience.ADMIN: "documents.is_deleted = false",
    policy.Audience.ADMIN_WITH_DELETED: "true",
}
PROJECT_SQL = {
    policy.ProjectAudience.NOBODY: "false",
    policy.ProjectAudience.MEMBER: "projects.owner_id = %(caller)s::UUID OR projects.state "
    "IN ('active', 'completed')",
    policy.ProjectAudience.ADMIN: "true",
}


def _sql(clause: object) -> str:
    return str(clause.compile(dialect=postgresql.dialect()))  # type: ignore[attr-defined]


@pytest.mark.parametrize("who", list(policy.Audience), ids=lambda a: a.name)
def test_document_predicates_keep_their_shape(who: policy.Audience) -> None:
    assert _sql(policy.document_predicate(who, Document, CALLER)) == DOCUMENT_SQL[who]


@pytest.mark.parametrize("who", list(policy.ProjectAudience), ids=lambda a: a.name)
def test_project_predicates_keep_their_shape(who: policy.ProjectAudience) -> None:
    assert _sql(policy.project_predicate(who, Project, CALLER)) == PROJECT_SQL[who]


def test_rule_names_are_unique_and_stable() -> None:
    names = [rule.name for rule in policy.DOCUMENT_POLICY.rules]
    assert names == ["AUTHENTICATED", "DELETED", "ADMIN_BYPASS", "OWNER", "PUBLIC", "PAID_TIER"]
    names = [rule.name for rule in policy.PROJECT_POLICY.rules]
    assert names == ["AUTHENTICATED", "ADMIN_BYPASS", "OWNER", "SHARED_STATE"]


ROLE_SETS = [frozenset(c) for n in range(3) for c in itertools.combinations(
    ["admin", "paid_user", "free_user", "editor"], n)]  # fmt: skip


def _held(
    who: policy.Audience, owner: bool, public: bool, paid: bool, deleted: bool
) -> dict[str, bool]:
    """Each rule's value on a row, evaluated the way the database would: constants from the
    audience, row conditions from the flags."""
    row = {"DELETED": not deleted, "OWNER": owner, "PUBLIC": public, "PAID_TIER": not paid}
    out = {}
    for rule in policy.DOCUMENT_POLICY.rules:
        out[rule.name] = rule.fixed[who] if who in rule.fixed else row[rule.name]
    return out


@pytest.mark.parametrize("roles", ROLE_SETS, ids=lambda r: "+".join(sorted(r)) or "none")
def test_document_explanations_agree_with_the_oracle(roles: frozenset[str]) -> None:
    principal = Principal(uuid.uuid4(), "p", roles)
    who = policy.audience(principal)
    for owner, public, paid, deleted in itertools.product((False, True), repeat=4):
        held = _held(who, owner, public, paid, deleted)
        admin = "admin" in roles
        sees = not deleted and (admin or owner or (public and ("paid_user" in roles or not paid)))
        assert policy.DOCUMENT_POLICY.decide(held) == sees
        owner_id = principal.user_id if owner else uuid.uuid4()
        verdict = policy.explain_document(principal, held, sees, owner_id)
        assert verdict.can_update == verdict.can_delete == (sees and (admin or owner))
        outcomes = {e.rule.name: e.outcome for e in verdict.evaluations}
        # The decision is readable from the outcomes: no DENY of a gate, one path all ALLOW.
        assert (outcomes["DELETED"] is policy.Outcome.DENY) == deleted
        assert (outcomes["ADMIN_BYPASS"] is policy.Outcome.ALLOW) == admin
        assert (outcomes["OWNER"] is policy.Outcome.ALLOW) == owner
        if not public:
            assert outcomes["PAID_TIER"] is policy.Outcome.NOT_APPLICABLE
        elif paid and not ({"paid_user", "admin"} & roles):
            assert outcomes["PAID_TIER"] is policy.Outcome.DENY
        else:
            assert outcomes["PAID_TIER"] is policy.Outcome.ALLOW
        assert all(e.sentence.endswith(".") for e in verdict.evaluations)


def test_a_deactivated_user_is_denied_by_the_first_gate() -> None:
    held = _held(policy.Audience.NOBODY, True, True, False, False)
    assert not policy.DOCUMENT_POLICY.decide(held)
    verdict = policy.explain_document(None, held, False, uuid.uuid4())
    first = verdict.evaluations[0]
    assert (first.rule.name, first.outcome) == ("AUTHENTICATED", policy.Outcome.DENY)
    assert not verdict.can_update


def test_tiers() -> None:
    assert policy.role_tier("admin") is policy.Tier.ADMIN
    assert policy.role_tier("paid_user") is policy.Tier.PAID
    assert policy.role_tier("free_user") is policy.Tier.FREE
    assert policy.role_tier("editor") is policy.Tier.FREE


def test_explained_user() -> None:
    method = "/docgate.v1.AccessService/ExplainDocumentAccess"
    me = Principal(uuid.uuid4(), "me", frozenset({"paid_user"}))
    admin = Principal(uuid.uuid4(), "a", frozenset({"admin"}))
    assert policy.explained_user(me, "", method) == me.user_id
    assert policy.explained_user(me, str(me.user_id), method) == me.user_id
    other = uuid.uuid4()
    assert policy.explained_user(admin, str(other), method) == other
    for raw in (str(other), "nope"):
        with pytest.raises(policy.PermissionDenied) as caught:
            policy.explained_user(me, raw, method)
        assert caught.value.reason == "NOT_SELF"
        assert caught.value.message.startswith("docgate.v1.AccessService/ExplainDocumentAccess")
    with pytest.raises(policy.InvalidArgument):
        policy.explained_user(admin, "nope", method)
