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
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, true

from docgate.auth.principal import Principal
from docgate.errors import PermissionDenied


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

_DENIED = "this method is not available to the caller's roles"


def is_public_method(method: str) -> bool:
    return method.startswith(PUBLIC_PREFIXES)


def check_rpc_access(method: str, principal: Principal) -> None:
    """Raise PermissionDenied unless ``principal`` may call ``method``; unknown methods are
    refused (deny by default)."""
    access = RPC_ACCESS.get(method)
    if access is None or (access is Access.ADMIN and not principal.is_admin):
        raise PermissionDenied(_DENIED, reason="METHOD_NOT_ALLOWED")


def require_self_or_admin(principal: Principal, user_id: uuid.UUID) -> None:
    if not (principal.is_admin or principal.user_id == user_id):
        raise PermissionDenied(_DENIED, reason="METHOD_NOT_ALLOWED")


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise PermissionDenied(_DENIED, reason="METHOD_NOT_ALLOWED")


# --- documents -------------------------------------------------------------------------------

# A function from the Document class (or an alias of it) to a boolean SQL clause. Each variant
# below is its own lambda so that the SQL *structure* never depends on a closure value: with
# with_loader_criteria the lambda is cached by code object, and only closure values (here the
# caller's id) become bound parameters.
Visibility = Callable[[Any], ColumnElement[bool]]


def _nothing(cls: Any) -> ColumnElement[bool]:
    return false()


def document_visibility(principal: Principal | None, *, show_deleted: bool = False) -> Visibility:
    """What ``principal`` may see of the documents table.

    A document is visible when it is not deleted and any of: the caller is admin; the caller
    owns it; it is public and (the caller is a paid user or it does not require paid access).
    Deleted documents are visible only to admins who ask for them (``show_deleted``); a
    non-admin asking for them is refused with PermissionDenied.
    """
    if principal is None:
        return _nothing
    if show_deleted and not principal.is_admin:
        raise PermissionDenied("show_deleted is available to admins only", reason="ADMIN_ONLY")
    if principal.is_admin:
        if show_deleted:
            return lambda cls: true()
        return lambda cls: cls.is_deleted == false()
    uid = principal.user_id
    if principal.is_paid:
        return lambda cls: and_(
            cls.is_deleted == false(), or_(cls.owner_id == uid, cls.is_public == true())
        )
    return lambda cls: and_(
        cls.is_deleted == false(),
        or_(
            cls.owner_id == uid,
            and_(cls.is_public == true(), cls.requires_paid_access == false()),
        ),
    )


def may_modify_document(principal: Principal, owner_id: uuid.UUID) -> bool:
    """Update and delete: the owner or an admin (of a document the caller can see)."""
    return principal.is_admin or principal.user_id == owner_id
