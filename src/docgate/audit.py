"""The audit trail's rules: the closed set of actions, which RPC leaves which, and the chain.

Every method docgate serves is in exactly one of two tables (tests/unit/test_audit_registry.py
fails otherwise): `WRITES`, the methods that change data, each with the action(s) its entry may
carry (the first is the default); `READS`, the methods that do not — of which `BYPASS_READS`
leave an ``ADMIN_BYPASS_READ`` entry when an admin uses the bypass. The unit of work enforces
the tables at run time: a write transaction in an RPC that is not in `WRITES` and records no
bypass is refused (`UnauditedWriteError`), so a new mutating RPC cannot ship without an action.

The chain: ``hash = SHA-256(prev_hash || canonical(entry))``, the first entry's prev_hash is
32 zero bytes. ``canonical(entry)`` is the entry's id as 8 bytes big-endian followed by `body`:
compact JSON with sorted keys of every other field but the hashes, so a verifier in any
language can recompute it from an export. (The split lets the database compute the hash where
the id is assigned, under the chain lock, from a body docgate encoded before taking it.)
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

GENESIS: Final = bytes(32)


class Action(Enum):
    """AuditEntry.Action of the API (member names match it without the ACTION_ prefix)."""

    ROLE_CREATED = "ROLE_CREATED"
    ROLE_UPDATED = "ROLE_UPDATED"
    ROLE_DELETED = "ROLE_DELETED"
    ROLE_ASSIGNED = "ROLE_ASSIGNED"
    ROLE_REVOKED = "ROLE_REVOKED"
    CONFIGURATION_CREATED = "CONFIGURATION_CREATED"
    CONFIGURATION_DELETED = "CONFIGURATION_DELETED"
    GRANT_CREATED = "GRANT_CREATED"
    GRANT_REVOKED = "GRANT_REVOKED"
    USER_CREATED = "USER_CREATED"
    USER_UPDATED = "USER_UPDATED"
    USER_DEACTIVATED = "USER_DEACTIVATED"
    USER_DELETED = "USER_DELETED"
    DOCUMENT_CREATED = "DOCUMENT_CREATED"
    DOCUMENT_UPDATED = "DOCUMENT_UPDATED"
    DOCUMENT_DELETED = "DOCUMENT_DELETED"
    DOCUMENT_UNDELETED = "DOCUMENT_UNDELETED"
    DOCUMENT_PURGED = "DOCUMENT_PURGED"
    PROJECT_CREATED = "PROJECT_CREATED"
    PROJECT_UPDATED = "PROJECT_UPDATED"
    PROJECT_DELETED = "PROJECT_DELETED"
    PROJECT_ACTIVATED = "PROJECT_ACTIVATED"
    PROJECT_COMPLETED = "PROJECT_COMPLETED"
    PROJECT_ARCHIVED = "PROJECT_ARCHIVED"
    PROJECT_RESTORED = "PROJECT_RESTORED"
    FEEDBACK_ADDED = "FEEDBACK_ADDED"
    FEEDBACK_DELETED = "FEEDBACK_DELETED"
    TEMPLATE_CREATED = "TEMPLATE_CREATED"
    TEMPLATE_UPDATED = "TEMPLATE_UPDATED"
    TEMPLATE_DELETED = "TEMPLATE_DELETED"
    ADMIN_BYPASS_READ = "ADMIN_BYPASS_READ"


A = Action
_DOC = "/docgate.v1.DocumentService/"
_PROJECT = "/docgate.v1.ProjectService/"
_ROLE = "/docgate.v1.RoleService/"
_USER = "/docgate.v1.UserService/"
_AUDIT = "/docgate.v1.AuditService/"
_ACCESS = "/docgate.v1.AccessService/"

WRITES: Final[Mapping[str, tuple[Action, ...]]] = {
    _DOC + "CreateDocument": (A.DOCUMENT_CREATED,),
    _DOC + "UpdateDocument": (A.DOCUMENT_UPDATED,),
    _DOC + "DeleteDocument": (A.DOCUMENT_DELETED,),
    _DOC + "UndeleteDocument": (A.DOCUMENT_UNDELETED,),
    _DOC + "PurgeDocument": (A.DOCUMENT_PURGED,),
    _ROLE + "CreateRole": (A.ROLE_CREATED,),
    _ROLE + "UpdateRole": (A.ROLE_UPDATED,),
    _ROLE + "DeleteRole": (A.ROLE_DELETED,),
    _ROLE + "AssignRole": (A.ROLE_ASSIGNED,),
    _ROLE + "RevokeRole": (A.ROLE_REVOKED,),
    _ROLE + "CreateConfiguration": (A.CONFIGURATION_CREATED,),
    _ROLE + "DeleteConfiguration": (A.CONFIGURATION_DELETED,),
    _ROLE + "GrantConfiguration": (A.GRANT_CREATED,),
    _ROLE + "RevokeConfiguration": (A.GRANT_REVOKED,),
    _USER + "CreateUser": (A.USER_CREATED,),
    _USER + "UpdateUser": (A.USER_UPDATED, A.USER_DEACTIVATED),
    _USER + "DeleteUser": (A.USER_DELETED,),
    _PROJECT + "CreateProject": (A.PROJECT_CREATED,),
    _PROJECT + "UpdateProject": (A.PROJECT_UPDATED,),
    _PROJECT + "DeleteProject": (A.PROJECT_DELETED,),
    _PROJECT + "ActivateProject": (A.PROJECT_ACTIVATED,),
    _PROJECT + "CompleteProject": (A.PROJECT_COMPLETED,),
    _PROJECT + "ArchiveProject": (A.PROJECT_ARCHIVED,),
    _PROJECT + "RestoreProject": (A.PROJECT_RESTORED,),
    _PROJECT + "AddFeedback": (A.FEEDBACK_ADDED,),
    _PROJECT + "DeleteFeedback": (A.FEEDBACK_DELETED,),
    _PROJECT + "CreateTemplate": (A.TEMPLATE_CREATED,),
    _PROJECT + "UpdateTemplate": (A.TEMPLATE_UPDATED,),
    _PROJECT + "DeleteTemplate": (A.TEMPLATE_DELETED,),
    _PROJECT + "CreateDocumentFromTemplate": (A.DOCUMENT_CREATED,),
    # The CLI's administrative commands are audited like the RPCs (actor: the system).
    "docgate users create": (A.USER_CREATED,),
    "docgate users assign-role": (A.ROLE_ASSIGNED,),
    "docgate users revoke-role": (A.ROLE_REVOKED,),
    "docgate users deactivate": (A.USER_UPDATED, A.USER_DEACTIVATED),
}
RPC_WRITES: Final = frozenset(m for m in WRITES if m.startswith("/"))

# Reads that can use an admin's bypass (show_deleted, or Get of a deleted document).
BYPASS_READS: Final = frozenset({_DOC + "GetDocument", _DOC + "ListDocuments"})
READS: Final = BYPASS_READS | frozenset(
    {
        _DOC + "BatchGetDocuments",
        _DOC + "SearchDocuments",
        _ROLE + "GetRole",
        _ROLE + "ListRoles",
        _ROLE + "ListUserRoles",
        _ROLE + "ListRoleMembers",
        _ROLE + "CheckRole",
        _ROLE + "ListConfigurations",
        _ROLE + "ListRoleConfigurations",
        _ROLE + "ListMyConfigurations",
        _USER + "GetCurrentUser",
        _USER + "GetUser",
        _USER + "ListUsers",
        _PROJECT + "GetProject",
        _PROJECT + "ListProjects",
        _PROJECT + "ListFeedback",
        _PROJECT + "GetTemplate",
        _PROJECT + "ListTemplates",
        _AUDIT + "ListAuditEntries",
        _ACCESS + "ExplainDocumentAccess",
        _ACCESS + "ExplainProjectAccess",
        _ACCESS + "ExplainConfigurationAccess",
    }
)


class UnauditedWriteError(RuntimeError):
    """A write transaction in an RPC that has no audit action (a bug: add it to WRITES)."""


def unclassified(methods: Iterable[str]) -> list[str]:
    """Served methods in neither table (or in both)."""
    return sorted(m for m in methods if (m in WRITES) == (m in READS))


# The fields whose values are never written to the trail, only their names.
SECRET_FIELDS: Final = frozenset(
    {"content", "body", "email", "hashed_password", "password", "token", "values"}
)

Scalar = str | int | float | bool | None


def _scalar(value: Any) -> Scalar:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return str(value.name)
    return str(value)  # uuids, datetimes


def changed(name: str, old: Any = None, new: Any = None) -> dict[str, Scalar]:
    """One changed field as stored: its old and new values, or none for a secret field."""
    if name in SECRET_FIELDS:
        return {}
    return {"old": _scalar(old), "new": _scalar(new)}


@dataclass
class Note:
    """What a repository records about the change it makes (the unit of work writes it)."""

    resource: str
    changes: dict[str, dict[str, Scalar]] = field(default_factory=dict)
    action: Action | None = None  # another of the method's actions than its default


@dataclass(frozen=True)
class Entry:
    id: int
    time: datetime
    actor_id: uuid.UUID | None
    request_id: str | None
    method: str
    action: Action
    resource: str
    changes: Mapping[str, Mapping[str, Scalar]]
    prev_hash: bytes = GENESIS
    hash: bytes = b""


def _encode(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _untimed(entry: Entry) -> dict[str, Any]:
    return {
        "actor_id": None if entry.actor_id is None else str(entry.actor_id),
        "request_id": entry.request_id,
        "method": entry.method,
        "action": entry.action.value,
        "resource": entry.resource,
        "changes": entry.changes,
    }


def encoded_time(time: datetime) -> str:
    """How `body` writes the time: UTC, microseconds, ``+00:00``."""
    return time.astimezone(UTC).isoformat(timespec="microseconds")


def body(entry: Entry) -> bytes:
    """Every field but the id and the two hashes, as sorted compact JSON."""
    return _encode({**_untimed(entry), "time": encoded_time(entry.time)})


def body_until_time(entry: Entry) -> bytes:
    """`body` up to its last field's value: "time" sorts after every other key, so the body is
    these bytes, then the time as a JSON string (`encoded_time`), then ``}``. The database
    appends those from the transaction's own clock, so the entry's INSERT is the only
    statement it costs (docgate.db.audit); ``entry.time`` is not used."""
    head = _encode(_untimed(entry))
    assert head.endswith(b"}")
    return head[:-1] + b',"time":'


def canonical(entry: Entry) -> bytes:
    """The bytes the hash covers after prev_hash: the id (8 bytes, big-endian), then `body`."""
    return entry.id.to_bytes(8, "big", signed=True) + body(entry)


def chain_hash(prev_hash: bytes, entry: Entry) -> bytes:
    return hashlib.sha256(prev_hash + canonical(entry)).digest()


@dataclass(frozen=True)
class Verdict:
    count: int
    head: bytes
    first_bad: Entry | None = None
    why: str = ""


def verify(entries: Iterable[Entry]) -> Verdict:
    """Walk the chain in id order: every prev_hash must be the previous hash, every hash the
    one its content gives. Stops at the first entry that breaks it."""
    previous, count = GENESIS, 0
    for entry in entries:
        if entry.prev_hash != previous:
            return Verdict(count, previous, entry, "prev_hash is not the previous entry's hash")
        if chain_hash(previous, entry) != entry.hash:
            return Verdict(count, previous, entry, "hash does not match the entry's content")
        previous, count = entry.hash, count + 1
    return Verdict(count, previous)
