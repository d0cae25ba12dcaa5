"""The one place where docgate's access rules are written.

Two kinds of rule live here:

* function level: which roles may call which RPC (`RPC_ACCESS`, deny by default);
* object level: which documents a role set may see (`document_visibility`) and change
  (`may_modify_document`); which projects (`project_visibility`, `may_modify_project`) and
  how a project's state may change (`TRANSITIONS`).

The ORM listener in docgate.db.filtering applies `document_visibility` to every ORM query; any
Core statement on documents takes its WHERE clause from the same function.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, and_, false, literal_column, or_, true

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


# The rules themselves. A document is visible when it is not deleted and any of: the caller is
# admin; the caller owns it; it is public and (the caller is a paid user or it does not require
# paid access). Deleted documents only for admins who ask for them. ``caller`` is the caller's
# id, as a value or as a SQL expression (a bound parameter in prepared statements).
def _nothing(cls: Any, caller: Any) -> ColumnElement[bool]:
    return false()


#
# FREE and PAID are written as two disjoint arms, the caller's own documents and everyone
# else's shared ones, whose OR is the rule: Core reads run each arm as its own UNION ALL branch,
# served by its own index (the owner's index, or the partial index of shared documents), and
# the ORM listener applies their OR.
def _free_arms(cls: Any, caller: Any) -> tuple[ColumnElement[bool], ...]:
    not_deleted = cls.is_deleted == false()
    return (
        and_(not_deleted, cls.owner_id == caller),
        and_(
            not_deleted,
            cls.is_public == true(),
            cls.requires_paid_access == false(),
            cls.owner_id != caller,
        ),
    )


def _paid_arms(cls: Any, caller: Any) -> tuple[ColumnElement[bool], ...]:
    not_deleted = cls.is_deleted == false()
    return (
        and_(not_deleted, cls.owner_id == caller),
        and_(not_deleted, cls.is_public == true(), cls.owner_id != caller),
    )


def _free(cls: Any, caller: Any) -> ColumnElement[bool]:
    return or_(*_free_arms(cls, caller))


def _paid(cls: Any, caller: Any) -> ColumnElement[bool]:
    return or_(*_paid_arms(cls, caller))


def _admin(cls: Any, caller: Any) -> ColumnElement[bool]:
    not_deleted: ColumnElement[bool] = cls.is_deleted == false()
    return not_deleted


def _everything(cls: Any, caller: Any) -> ColumnElement[bool]:
    return true()


_RULES: Mapping[Audience, Callable[[Any, Any], ColumnElement[bool]]] = {
    Audience.NOBODY: _nothing,
    Audience.FREE: _free,
    Audience.PAID: _paid,
    Audience.ADMIN: _admin,
    Audience.ADMIN_WITH_DELETED: _everything,
}


_ARMS: Mapping[Audience, Callable[[Any, Any], tuple[ColumnElement[bool], ...]]] = {
    Audience.FREE: _free_arms,
    Audience.PAID: _paid_arms,
}


def document_predicate(who: Audience, cls: Any, caller: Any) -> ColumnElement[bool]:
    """The visibility clause for ``who`` on ``cls`` (Core statements, prepared statements)."""
    return _RULES[who](cls, caller)


def document_arms(who: Audience, cls: Any, caller: Any) -> tuple[ColumnElement[bool], ...]:
    """The same rule as `document_predicate`, as disjoint clauses whose OR it is (one clause
    for the audiences whose rule has no OR); Core page and count statements run one UNION ALL
    branch per clause."""
    arms = _ARMS.get(who)
    return arms(cls, caller) if arms is not None else (_RULES[who](cls, caller),)


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


def _projects_nothing(cls: Any, caller: Any) -> ColumnElement[bool]:
    return false()


def _projects_member(cls: Any, caller: Any) -> ColumnElement[bool]:
    return or_(cls.owner_id == caller, cls.state.in_(_SHARED_STATE_LITERALS))


def _projects_everything(cls: Any, caller: Any) -> ColumnElement[bool]:
    return true()


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
