"""The one place where docgate's access rules are written.

Two kinds of rule live here:

* function level: which roles may call which RPC (`RPC_ACCESS`, deny by default);
* object level: which documents a role set may see (`document_visibility`) and change
  (`may_modify_document`); which projects (`project_visibility`, `may_modify_project`) and
  how a project's state may change (`TRANSITIONS`).

The ORM listener in docgate.db.filtering applies `document_visibility` to every ORM query; any
Core statement on documents takes its WHERE clause from the same function. Both are built from
one list of named rules (`DOCUMENT_POLICY`, `PROJECT_POLICY`), which AccessService evaluates
rule by rule to explain a decision (`RowPolicy`, `explain_document`, `explain_project`).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, literal_column, not_, or_, true
from sqlalchemy.sql.elements import False_, True_

from docgate import validation
from docgate.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from docgate.principal import Principal


class Access(Enum):
    """Who may call an RPC."""

    AUTHENTICATED = "any authenticated caller"
    ADMIN = "admin only"
    # Authenticated at the door; the servicer then calls `require_self_or_admin` with the
    # user the request is about.
    SELF_OR_ADMIN = "admin, or the caller about themselves"


_DOC = "/docgate.v1.DocumentService/"
_PROJECT = "/docgate.v1.ProjectService/"
_ROLE = "/docgate.v1.RoleService/"
_USER = "/docgate.v1.UserService/"
_ACCESS = "/docgate.v1.AccessService/"

RPC_ACCESS: Mapping[str, Access] = {
    _DOC + "CreateDocument": Access.AUTHENTICATED,
    _DOC + "GetDocument": Access.AUTHENTICATED,
    _DOC + "BatchGetDocuments": Access.AUTHENTICATED,
    _DOC + "ListDocuments": Access.AUTHENTICATED,
    _DOC + "SearchDocuments": Access.AUTHENTICATED,
    _DOC + "UpdateDocument": Access.AUTHENTICATED,
    _DOC + "DeleteDocument": Access.AUTHENTICATED,
    _DOC + "UndeleteDocument": Access.ADMIN,
    _DOC + "PurgeDocument": Access.ADMIN,
    _ROLE + "CreateRole": Access.ADMIN,
    _ROLE + "GetRole": Access.AUTHENTICATED,
    _ROLE + "ListRoles": Access.AUTHENTICATED,
    _ROLE + "UpdateRole": Access.ADMIN,
    _ROLE + "DeleteRole": Access.ADMIN,
    _ROLE + "AssignRole": Access.ADMIN,
    _ROLE + "RevokeRole": Access.ADMIN,
    _ROLE + "ListUserRoles": Access.SELF_OR_ADMIN,
    _ROLE + "ListRoleMembers": Access.ADMIN,
    _ROLE + "CheckRole": Access.SELF_OR_ADMIN,
    _ROLE + "CreateConfiguration": Access.ADMIN,
    _ROLE + "ListConfigurations": Access.ADMIN,
    _ROLE + "DeleteConfiguration": Access.ADMIN,
    _ROLE + "GrantConfiguration": Access.ADMIN,
    _ROLE + "RevokeConfiguration": Access.ADMIN,
    _ROLE + "ListRoleConfigurations": Access.ADMIN,
    _ROLE + "ListMyConfigurations": Access.AUTHENTICATED,
    _USER + "GetCurrentUser": Access.AUTHENTICATED,
    _USER + "CreateUser": Access.ADMIN,
    _USER + "GetUser": Access.SELF_OR_ADMIN,
    _USER + "ListUsers": Access.ADMIN,
    _USER + "UpdateUser": Access.ADMIN,
    _USER + "DeleteUser": Access.ADMIN,
    # Projects: who may see or change one is object-level policy (below); templates are
    # written by admins and read by everyone.
    _PROJECT + "CreateProject": Access.AUTHENTICATED,
    _PROJECT + "GetProject": Access.AUTHENTICATED,
    _PROJECT + "ListProjects": Access.AUTHENTICATED,
    _PROJECT + "UpdateProject": Access.AUTHENTICATED,
    _PROJECT + "DeleteProject": Access.AUTHENTICATED,
    _PROJECT + "ActivateProject": Access.AUTHENTICATED,
    _PROJECT + "CompleteProject": Access.AUTHENTICATED,
    _PROJECT + "ArchiveProject": Access.AUTHENTICATED,
    _PROJECT + "RestoreProject": Access.AUTHENTICATED,
    _PROJECT + "AddFeedback": Access.AUTHENTICATED,
    _PROJECT + "ListFeedback": Access.AUTHENTICATED,
    _PROJECT + "DeleteFeedback": Access.AUTHENTICATED,
    _PROJECT + "CreateTemplate": Access.ADMIN,
    _PROJECT + "GetTemplate": Access.AUTHENTICATED,
    _PROJECT + "ListTemplates": Access.AUTHENTICATED,
    _PROJECT + "UpdateTemplate": Access.ADMIN,
    _PROJECT + "DeleteTemplate": Access.ADMIN,
    _PROJECT + "CreateDocumentFromTemplate": Access.AUTHENTICATED,
    # Anyone about themselves (user_id empty: the caller), admins about anyone: the servicer
    # calls `explained_user`.
    _ACCESS + "ExplainDocumentAccess": Access.SELF_OR_ADMIN,
    _ACCESS + "ExplainProjectAccess": Access.SELF_OR_ADMIN,
    _ACCESS + "ExplainConfigurationAccess": Access.SELF_OR_ADMIN,
    "/docgate.v1.AuditService/ListAuditEntries": Access.ADMIN,
}

# Served without a token: standard infrastructure, never docgate data.
PUBLIC_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
)


def _shown(method: str) -> str:
    """``docgate.v1.RoleService/CreateRole``: the method as grpcurl spells it."""
    return method.lstrip("/")


def _denied(method: str, rule: str) -> PermissionDenied:
    return PermissionDenied(f"{_shown(method)} is {rule}", reason="METHOD_NOT_ALLOWED")


def is_public_method(method: str) -> bool:
    return method.startswith(PUBLIC_PREFIXES)


def unlisted_methods(served: Iterable[str]) -> list[str]:
    """The served methods that have no row in RPC_ACCESS (and would be refused to everyone).
    The server refuses to start while this is not empty."""
    return sorted(m for m in served if m not in RPC_ACCESS and not is_public_method(m))


def check_rpc_access(method: str, principal: Principal) -> None:
    """Raise PermissionDenied unless ``principal`` may call ``method``; unknown methods are
    refused (deny by default). The message names the method and who may call it."""
    access = RPC_ACCESS.get(method)
    if access is None:
        raise _denied(method, "not available to any caller")
    if access is Access.ADMIN and not principal.is_admin:
        raise _denied(method, "available to admins only")


_SELF_RULE = "available to admins; a non-admin may only ask about themselves"


def require_self_or_admin(principal: Principal, user_id: uuid.UUID, method: str) -> None:
    if not (principal.is_admin or principal.user_id == user_id):
        raise _denied(method, _SELF_RULE)


def require_admin(principal: Principal, method: str) -> None:
    if not principal.is_admin:
        raise _denied(method, "available to admins only")


def check_owner_role_filter(principal: Principal, role: str) -> None:
    """ListDocuments owner_role: any role for admins, else only a role the caller holds —
    otherwise the filter would tell who holds a role, which CheckRole refuses to."""
    if not (principal.is_admin or role in principal.roles):
        raise PermissionDenied(
            "owner_role may name only a role you hold", reason="OWNER_ROLE_NOT_HELD"
        )


def subject_user_id(principal: Principal, raw: str, field: str, method: str) -> uuid.UUID:
    """The user a SELF_OR_ADMIN request (``method``) is about. A non-admin asking about anyone
    else, or about no valid id at all, is PERMISSION_DENIED; an admin's malformed id is
    INVALID_ARGUMENT."""
    assert RPC_ACCESS.get(method) is Access.SELF_OR_ADMIN, method
    try:
        user_id = validation.parse_id(raw, field)
    except InvalidArgument:
        if principal.is_admin:
            raise
        raise _denied(method, _SELF_RULE) from None
    require_self_or_admin(principal, user_id, method)
    return user_id


# --- row rules: one list, read two ways ----------------------------------------------------
#
# A row policy (documents, projects) is written once, as named rules: gates that must all hold,
# and paths of which one must hold in full. `RowPolicy.predicate` turns the list into the WHERE
# clause of every read path (per audience, so each audience has one fixed SQL shape);
# AccessService selects every rule's clause as a column of the same row, next to that very
# predicate, and `RowPolicy.explain` turns the values into outcomes and sentences. There is no
# second copy of a rule to drift.


class Outcome(Enum):
    """What a rule did for one caller and one row (AccessService's RuleEvaluation.Outcome)."""

    ALLOW = "allow"
    DENY = "deny"
    NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class Rule:
    """One named rule (the name is stable: the API shows it). ``row`` is its condition on the
    row, a function of (columns, caller); ``fixed`` holds, per audience, the value the caller's
    audience alone decides (no row condition then)."""

    name: str
    holds: str  # one sentence, when the rule holds
    fails: str  # one sentence, when it does not
    row: Callable[[Any, Any], ColumnElement[bool]] | None = None
    fixed: Mapping[Any, bool] = field(default_factory=dict)

    def clause(self, who: Any, cls: Any, caller: Any) -> ColumnElement[bool]:
        if who in self.fixed:
            return true() if self.fixed[who] else false()
        assert self.row is not None, (self.name, who)
        return self.row(cls, caller)


@dataclass(frozen=True)
class Evaluation:
    rule: Rule
    outcome: Outcome
    sentence: str


@dataclass(frozen=True)
class RowPolicy:
    """Visible: every gate holds, and every rule of at least one path."""

    gates: tuple[Rule, ...]
    paths: tuple[tuple[Rule, ...], ...]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.gates + tuple(rule for path in self.paths for rule in path)

    def predicate(self, who: Any, cls: Any, caller: Any) -> ColumnElement[bool]:
        """The WHERE clause for audience ``who``. Rules the audience decides are constants,
        folded away here (`_all`, `_any`), so each audience gets the short clause it needs."""
        gates = [gate.clause(who, cls, caller) for gate in self.gates]
        paths: list[ColumnElement[bool]] = []
        for path in self.paths:
            clauses: list[ColumnElement[bool]] = []
            for rule in path:  # no clause is built past one the audience rules out
                clauses.append(rule.clause(who, cls, caller))
                if isinstance(clauses[-1], False_):
                    break
            paths.append(_all(clauses))
            if isinstance(paths[-1], True_):  # the audience alone opens this path
                break
        return _all([*gates, _any(paths)])

    def arms(self, who: Any, cls: Any, caller: Any) -> tuple[ColumnElement[bool], ...]:
        """The same rule as `predicate`, as disjoint clauses whose OR it is: one per path the
        audience leaves open, each with the gates and the negation of the paths before it
        (OWNER, then PUBLIC ∧ PAID_TIER ∧ not OWNER: the caller's own documents and everyone
        else's shared ones). Core page and count statements run one UNION ALL branch per arm,
        each served by its own index. A path the audience alone opens (ADMIN_BYPASS) covers
        every other: one arm, the gates."""
        gates = _all([gate.clause(who, cls, caller) for gate in self.gates])
        if isinstance(gates, False_):
            return (gates,)
        opened: list[ColumnElement[bool]] = []
        arms: list[ColumnElement[bool]] = []
        for path in self.paths:
            clauses: list[ColumnElement[bool]] = []
            for rule in path:
                clauses.append(rule.clause(who, cls, caller))
                if isinstance(clauses[-1], False_):
                    break
            clause = _all(clauses)
            if isinstance(clause, False_):
                continue
            if isinstance(clause, True_):
                return (gates,)
            arms.append(_all([gates, clause, *(not_(earlier) for earlier in opened)]))
            opened.append(clause)
        return tuple(arms) or (false(),)

    def decide(self, held: Mapping[str, bool]) -> bool:
        """The predicate's value, from the values of its rules."""
        return all(held[g.name] for g in self.gates) and any(
            all(held[rule.name] for rule in path) for path in self.paths
        )

    def explain(self, held: Mapping[str, bool]) -> list[Evaluation]:
        """Each rule's outcome: a gate allows or denies; on a path, the first rule that does
        not hold is not applicable when it opens the path (OWNER for someone else's document)
        and denies when it closes one the earlier rules opened (PAID_TIER after PUBLIC); the
        rules after it are not considered."""
        out = [_evaluated(g, held[g.name], Outcome.DENY) for g in self.gates]
        for path in self.paths:
            stopped: Rule | None = None
            for index, rule in enumerate(path):
                if stopped is not None:
                    sentence = f"Not considered: {stopped.name} does not hold."
                    out.append(Evaluation(rule, Outcome.NOT_APPLICABLE, sentence))
                    continue
                failing = Outcome.NOT_APPLICABLE if index == 0 else Outcome.DENY
                out.append(_evaluated(rule, held[rule.name], failing))
                if not held[rule.name]:
                    stopped = rule
        return out


# Constants are folded here, not left to SQLAlchemy (it keeps `false OR …`), so an audience's
# clause holds only the conditions its rows decide.
def _all(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    if any(isinstance(c, False_) for c in clauses):
        return false()
    kept = [c for c in clauses if not isinstance(c, True_)]
    return true() if not kept else kept[0] if len(kept) == 1 else and_(*kept)


def _any(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    if any(isinstance(c, True_) for c in clauses):
        return true()
    kept = [c for c in clauses if not isinstance(c, False_)]
    return false() if not kept else kept[0] if len(kept) == 1 else or_(*kept)


def _evaluated(rule: Rule, held: bool, failing: Outcome) -> Evaluation:
    return Evaluation(rule, Outcome.ALLOW if held else failing, rule.holds if held else rule.fails)


class Tier(Enum):
    """What a role gives (AccessService's ConsideredRole.Tier)."""

    FREE = "free"  # any role but admin and paid_user
    PAID = "paid"
    ADMIN = "admin"


def role_tier(role: str) -> Tier:
    held = Principal(uuid.UUID(int=0), "", frozenset({role}))
    return Tier.ADMIN if held.is_admin else Tier.PAID if held.is_paid else Tier.FREE


_NOT_SELF = "a non-admin may only ask about themselves"


def explained_user(principal: Principal, raw: str, method: str) -> uuid.UUID:
    """The user an AccessService request is about: empty is the caller; anyone else only for
    admins (PERMISSION_DENIED, NOT_SELF — also for a non-admin's malformed id, which is about
    no one they may ask about); an admin's malformed id is INVALID_ARGUMENT."""
    if not raw:
        return principal.user_id
    try:
        user_id = validation.parse_id(raw, "user_id")
    except InvalidArgument:
        if principal.is_admin:
            raise
        user_id = None
    if not principal.is_admin and user_id != principal.user_id:
        raise PermissionDenied(f"{_shown(method)}: {_NOT_SELF}", reason="NOT_SELF")
    assert user_id is not None
    return user_id


# --- documents -------------------------------------------------------------------------------

# A function from the Document class (or an alias, or the table's columns) to a boolean clause.
Visibility = Callable[[Any], ColumnElement[bool]]


class Audience(Enum):
    """Which visibility rule applies to a caller: the SQL *shape* of their predicate."""

    NOBODY = "nobody"
    FREE = "free"  # any role set without admin or paid_user, custom roles included
    PAID = "paid"
    ADMIN = "admin"
    ADMIN_WITH_DELETED = "admin_with_deleted"


def audience(principal: Principal | None, *, show_deleted: bool = False) -> Audience:
    """The rule for ``principal``; PermissionDenied when a non-admin asks for deleted ones."""
    if principal is None:
        return Audience.NOBODY
    if show_deleted and not principal.is_admin:
        raise PermissionDenied("show_deleted is available to admins only", reason="ADMIN_ONLY")
    if principal.is_admin:
        return Audience.ADMIN_WITH_DELETED if show_deleted else Audience.ADMIN
    return Audience.PAID if principal.is_paid else Audience.FREE


_AUTHENTICATED = "AUTHENTICATED"
_ADMIN_BYPASS = "ADMIN_BYPASS"
_OWNER = "OWNER"

# The document policy, rule by rule (see `RowPolicy`): the read predicates of every audience
# and AccessService's explanations come from this one list.
DOCUMENT_POLICY = RowPolicy(
    gates=(
        Rule(
            _AUTHENTICATED,
            "The user is active, so docgate answers their calls.",
            "The user is deactivated: docgate refuses every call they make.",
            fixed={who: who is not Audience.NOBODY for who in Audience},
        ),
        Rule(
            "DELETED",
            "The document is not deleted.",
            "The document is deleted: only an admin who asks with show_deleted reads it.",
            row=lambda cls, caller: cls.is_deleted == false(),
            fixed={Audience.ADMIN_WITH_DELETED: True},
        ),
    ),
    paths=(
        (
            Rule(
                _ADMIN_BYPASS,
                "The user holds the admin role, which sees every document.",
                "The user does not hold the admin role.",
                fixed={
                    who: who in (Audience.ADMIN, Audience.ADMIN_WITH_DELETED) for who in Audience
                },
            ),
        ),
        (
            Rule(
                _OWNER,
                "The user owns the document.",
                "The user does not own the document.",
                row=lambda cls, caller: cls.owner_id == caller,
            ),
        ),
        (
            Rule(
                "PUBLIC",
                "The document is public.",
                "The document is not public.",
                row=lambda cls, caller: cls.is_public == true(),
            ),
            Rule(
                "PAID_TIER",
                "The document does not require paid access, or the user's tier (paid_user,"
                " or admin above it) gives it.",
                "The document requires paid access, which the user's roles (neither paid_user"
                " nor admin) do not give.",
                row=lambda cls, caller: cls.requires_paid_access == false(),
                # Admins' tier includes paid access (their predicate needs no PAID_TIER at all).
                fixed={
                    Audience.PAID: True,
                    Audience.ADMIN: True,
                    Audience.ADMIN_WITH_DELETED: True,
                },
            ),
        ),
    ),
)


# The rules themselves, once, as data (`DOCUMENT_POLICY`, below): a document is visible when the
# caller is authenticated, it is not deleted (unless an admin asks for deleted ones), and any
# of: the caller is admin; the caller owns it; it is public and (the caller is a paid user or it
# does not require paid access). The read predicates below and the explanations of
# AccessService (`explain`) are both derived from that one list. ``caller`` is the caller's id,
# as a value or as a SQL expression (a bound parameter in prepared statements).
def _nothing(cls: Any, caller: Any) -> ColumnElement[bool]:
    return DOCUMENT_POLICY.predicate(Audience.NOBODY, cls, caller)


def _free(cls: Any, caller: Any) -> ColumnElement[bool]:
    return DOCUMENT_POLICY.predicate(Audience.FREE, cls, caller)


def _paid(cls: Any, caller: Any) -> ColumnElement[bool]:
    return DOCUMENT_POLICY.predicate(Audience.PAID, cls, caller)


def _admin(cls: Any, caller: Any) -> ColumnElement[bool]:
    return DOCUMENT_POLICY.predicate(Audience.ADMIN, cls, caller)


def _everything(cls: Any, caller: Any) -> ColumnElement[bool]:
    return DOCUMENT_POLICY.predicate(Audience.ADMIN_WITH_DELETED, cls, caller)


_RULES: Mapping[Audience, Callable[[Any, Any], ColumnElement[bool]]] = {
    Audience.NOBODY: _nothing,
    Audience.FREE: _free,
    Audience.PAID: _paid,
    Audience.ADMIN: _admin,
    Audience.ADMIN_WITH_DELETED: _everything,
}


def document_predicate(who: Audience, cls: Any, caller: Any) -> ColumnElement[bool]:
    """The visibility clause for ``who`` on ``cls`` (Core statements, prepared statements)."""
    return _RULES[who](cls, caller)


def document_arms(who: Audience, cls: Any, caller: Any) -> tuple[ColumnElement[bool], ...]:
    """The same rule as `document_predicate`, as disjoint clauses whose OR it is (one clause
    for the audiences whose rule has no OR); Core page and count statements run one UNION ALL
    branch per clause."""
    return DOCUMENT_POLICY.arms(who, cls, caller)


def document_visibility(principal: Principal | None, *, show_deleted: bool = False) -> Visibility:
    """What ``principal`` may see of the documents table, as the callable that the ORM
    listener hands to with_loader_criteria.

    with_loader_criteria caches a lambda by its code object and turns its closure values (here
    the caller's id) into bound parameters, so the SQL structure must never depend on a closure
    value: each audience gets a lambda of its own.
    """
    who = audience(principal, show_deleted=show_deleted)
    uid = principal.user_id if principal is not None else None
    if who is Audience.FREE:
        return lambda cls: _free(cls, uid)
    if who is Audience.PAID:
        return lambda cls: _paid(cls, uid)
    if who is Audience.ADMIN:
        return lambda cls: _admin(cls, None)
    if who is Audience.ADMIN_WITH_DELETED:
        return lambda cls: _everything(cls, None)
    return lambda cls: _nothing(cls, None)


def may_modify_document(principal: Principal, owner_id: uuid.UUID) -> bool:
    """Update and delete: the owner or an admin (of a document the caller can see)."""
    return principal.is_admin or principal.user_id == owner_id


@dataclass(frozen=True)
class Explanation:
    """AccessService's answer about one user and one document or project."""

    visible: bool
    can_update: bool
    can_delete: bool
    evaluations: list[Evaluation]


MODIFY_DOCUMENT = Rule(
    "MODIFY",
    "The user owns the document or is an admin: they may update and delete it.",
    "Only the document's owner or an admin may update or delete it.",
)


def explain_document(
    subject: Principal | None, held: Mapping[str, bool], visible: bool, owner_id: uuid.UUID
) -> Explanation:
    """``held``: each DOCUMENT_POLICY rule's value for the row; ``visible``: the read
    predicate's value for it (both evaluated in the same statement). Update and delete need
    what UpdateDocument and DeleteDocument check: visible, and `may_modify_document`."""
    evaluations = DOCUMENT_POLICY.explain(held)
    may = subject is not None and may_modify_document(subject, owner_id)
    evaluations.append(_evaluated(MODIFY_DOCUMENT, may, Outcome.DENY))
    return Explanation(visible, visible and may, visible and may, evaluations)


# --- projects --------------------------------------------------------------------------------
#
# Visibility: admins see every project; the owner sees their own; every other authenticated
# caller sees ACTIVE and COMPLETED projects. DRAFT and ARCHIVED stay private to the owner and
# admins. A project the caller may not see answers exactly like one that does not exist. As for
# documents, the rule is written once as a function of (columns, caller) per audience: Core and
# prepared statements call `project_predicate`, the ORM listener `project_visibility`.


class ProjectState(enum.Enum):
    """Project.State of the API (member names match it); stored as the lowercase values. The
    lifecycle is a rule, so it is defined here and the ORM model uses it."""

    DRAFT = "draft"
    ACTIVE = "active"
    COMPLETED = "completed"
    ARCHIVED = "archived"


# The states every authenticated caller may see.
SHARED_PROJECT_STATES: frozenset[ProjectState] = frozenset(
    {ProjectState.ACTIVE, ProjectState.COMPLETED}
)
# Rendered into the SQL as literals, sorted so the text never varies: the statement shape is
# fixed per audience and the caller's id stays the only bound value (PreparedQuery requires
# every bound parameter on every call, and binds them past SQLAlchemy's enum conversion).
_SHARED_STATE_LITERALS: tuple[ColumnElement[Any], ...] = tuple(
    literal_column(f"'{value}'") for value in sorted(s.value for s in SHARED_PROJECT_STATES)
)


class ProjectAudience(Enum):
    """Which project visibility rule applies to a caller: the SQL shape of their predicate."""

    NOBODY = "nobody"
    MEMBER = "member"  # any authenticated caller who is not admin
    ADMIN = "admin"


def project_audience(principal: Principal | None) -> ProjectAudience:
    if principal is None:
        return ProjectAudience.NOBODY
    return ProjectAudience.ADMIN if principal.is_admin else ProjectAudience.MEMBER


# The project policy, rule by rule (see `RowPolicy` and DOCUMENT_POLICY).
PROJECT_POLICY = RowPolicy(
    gates=(
        Rule(
            _AUTHENTICATED,
            "The user is active, so docgate answers their calls.",
            "The user is deactivated: docgate refuses every call they make.",
            fixed={who: who is not ProjectAudience.NOBODY for who in ProjectAudience},
        ),
    ),
    paths=(
        (
            Rule(
                _ADMIN_BYPASS,
                "The user holds the admin role, which sees every project.",
                "The user does not hold the admin role.",
                fixed={who: who is ProjectAudience.ADMIN for who in ProjectAudience},
            ),
        ),
        (
            Rule(
                _OWNER,
                "The user owns the project.",
                "The user does not own the project.",
                row=lambda cls, caller: cls.owner_id == caller,
            ),
        ),
        (
            Rule(
                "SHARED_STATE",
                "The project is ACTIVE or COMPLETED, which every user sees.",
                "The project is DRAFT or ARCHIVED, private to its owner and admins.",
                row=lambda cls, caller: cls.state.in_(_SHARED_STATE_LITERALS),
            ),
        ),
    ),
)


def _projects_nothing(cls: Any, caller: Any) -> ColumnElement[bool]:
    return PROJECT_POLICY.predicate(ProjectAudience.NOBODY, cls, caller)


def _projects_member(cls: Any, caller: Any) -> ColumnElement[bool]:
    return PROJECT_POLICY.predicate(ProjectAudience.MEMBER, cls, caller)


def _projects_everything(cls: Any, caller: Any) -> ColumnElement[bool]:
    return PROJECT_POLICY.predicate(ProjectAudience.ADMIN, cls, caller)


_PROJECT_RULES: Mapping[ProjectAudience, Callable[[Any, Any], ColumnElement[bool]]] = {
    ProjectAudience.NOBODY: _projects_nothing,
    ProjectAudience.MEMBER: _projects_member,
    ProjectAudience.ADMIN: _projects_everything,
}


def project_predicate(who: ProjectAudience, cls: Any, caller: Any) -> ColumnElement[bool]:
    """The visibility clause for ``who`` on ``cls`` (the Project class, an alias, or the
    table's columns); ``caller`` is the caller's id as a value or a bound parameter."""
    return _PROJECT_RULES[who](cls, caller)


def project_visibility(principal: Principal | None) -> Visibility:
    """What ``principal`` may see of the projects table, for with_loader_criteria: one lambda
    per audience, the caller's id its only closure value (see `document_visibility`)."""
    who = project_audience(principal)
    uid = principal.user_id if principal is not None else None
    if who is ProjectAudience.MEMBER:
        return lambda cls: _projects_member(cls, uid)
    if who is ProjectAudience.ADMIN:
        return lambda cls: _projects_everything(cls, None)
    return lambda cls: _projects_nothing(cls, None)


def may_modify_project(principal: Principal, owner_id: uuid.UUID) -> bool:
    """Update, delete and the state changes: the owner or an admin (of a project the caller
    can see)."""
    return principal.is_admin or principal.user_id == owner_id


# DeleteProject: only these (documents keep living after their project; an ACTIVE or
# COMPLETED project is archived first).
DELETABLE_PROJECT_STATES: frozenset[ProjectState] = frozenset(
    {ProjectState.DRAFT, ProjectState.ARCHIVED}
)
MODIFY_PROJECT = Rule(
    "MODIFY",
    "The user owns the project or is an admin: they may update it and change its state.",
    "Only the project's owner or an admin may change it.",
)
DELETABLE_STATE = Rule(
    "DELETABLE_STATE",
    "The project is DRAFT or ARCHIVED, the states a project may be deleted in.",
    "The project is ACTIVE or COMPLETED: it must be archived before it can be deleted.",
)


def explain_project(
    subject: Principal | None,
    held: Mapping[str, bool],
    visible: bool,
    owner_id: uuid.UUID,
    state: ProjectState,
) -> Explanation:
    """As `explain_document`, with what UpdateProject and DeleteProject check."""
    evaluations = PROJECT_POLICY.explain(held)
    may = subject is not None and may_modify_project(subject, owner_id)
    evaluations.append(_evaluated(MODIFY_PROJECT, may, Outcome.DENY))
    deletable = state in DELETABLE_PROJECT_STATES
    evaluations.append(_evaluated(DELETABLE_STATE, deletable, Outcome.DENY))
    return Explanation(visible, visible and may, visible and may and deletable, evaluations)


# --- configurations --------------------------------------------------------------------------


def grant_in_force(cls: Any) -> ColumnElement[bool]:
    """A grant counts until its expiry, by the database clock (expired at exactly expires_at,
    the SpiceDB rule): ListMyConfigurations and ExplainConfigurationAccess both use it."""
    return or_(cls.expires_at.is_(None), cls.expires_at > func.now())


class StateChange(Enum):
    """The custom methods that move a project through its lifecycle (AIP-216)."""

    ACTIVATE = "ActivateProject"
    COMPLETE = "CompleteProject"
    ARCHIVE = "ArchiveProject"
    RESTORE = "RestoreProject"


# Each method: the states it may start from, and the state it leads to. None: back to the
# state the project was archived from (the row's archived_from).
TRANSITIONS: Mapping[StateChange, tuple[frozenset[ProjectState], ProjectState | None]] = {
    StateChange.ACTIVATE: (frozenset({ProjectState.DRAFT}), ProjectState.ACTIVE),
    StateChange.COMPLETE: (frozenset({ProjectState.ACTIVE}), ProjectState.COMPLETED),
    StateChange.ARCHIVE: (
        frozenset({ProjectState.DRAFT, ProjectState.ACTIVE, ProjectState.COMPLETED}),
        ProjectState.ARCHIVED,
    ),
    StateChange.RESTORE: (frozenset({ProjectState.ARCHIVED}), None),
}


def next_state(
    method: StateChange, current: ProjectState, archived_from: ProjectState | None
) -> ProjectState:
    """The state ``method`` moves a project in ``current`` to; FailedPrecondition
    (INVALID_STATE_TRANSITION, metadata "state": the current state's API name) when it may
    not start from there."""
    sources, target = TRANSITIONS[method]
    if current not in sources:
        raise FailedPrecondition(
            f"{method.value} is not allowed for a project in state {current.name}",
            reason="INVALID_STATE_TRANSITION",
            metadata={"state": current.name},
        )
    if target is not None:
        return target
    if archived_from is None or archived_from is ProjectState.ARCHIVED:
        # The schema's CHECK constraints make this unreachable for a stored row.
        raise ValueError(f"an archived project cannot have archived_from={archived_from}")
    return archived_from


def archived_from_after(current: ProjectState, new: ProjectState) -> ProjectState | None:
    """The archived_from a project moving from ``current`` to ``new`` must store: the state
    it leaves when it is archived, else none (the schema checks the same)."""
    return current if new is ProjectState.ARCHIVED else None
