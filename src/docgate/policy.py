"""The one place where docgate's access rules are written.

Two kinds of rule live here:

* function level: which roles may call which RPC (`RPC_ACCESS`, deny by default);
* object level: which documents a role set may see (`document_visibility`) and change
  (`may_modify_document`).

The ORM listener in docgate.db.filtering applies `document_visibility` to every ORM query; any
Core statement on documents takes its WHERE clause from the same function.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, true

from docgate import validation
from docgate.errors import InvalidArgument, PermissionDenied
from docgate.principal import Principal


class Access(Enum):
    """Who may call an RPC."""

    AUTHENTICATED = "any authenticated caller"
    ADMIN = "admin only"
    # Authenticated at the door; the servicer then calls `require_self_or_admin` with the
    # user the request is about.
    SELF_OR_ADMIN = "admin, or the caller about themselves"


_DOC = "/docgate.v1.DocumentService/"
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


def _free(cls: Any, caller: Any) -> ColumnElement[bool]:
    return and_(
        cls.is_deleted == false(),
        or_(
            cls.owner_id == caller,
            and_(cls.is_public == true(), cls.requires_paid_access == false()),
        ),
    )


def _paid(cls: Any, caller: Any) -> ColumnElement[bool]:
    return and_(cls.is_deleted == false(), or_(cls.owner_id == caller, cls.is_public == true()))


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


def document_predicate(who: Audience, cls: Any, caller: Any) -> ColumnElement[bool]:
    """The visibility clause for ``who`` on ``cls`` (Core statements, prepared statements)."""
    return _RULES[who](cls, caller)


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
