"""Function-level access, table-driven: every RPC in the service descriptors, called as
anonymous, free_user, paid_user and admin, against an oracle written from the issues' text
(not from docgate.policy). An RPC the oracle or the policy table does not know fails."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import grpc.aio
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from docgate import policy
from docgate.bootstrap import App
from tests import support
from tests.support import make_user, served_bindings

DEADLINE = 10.0

# Issue 3: "Undelete and Purge are admin-only"; every other document RPC is for any
# authenticated caller (what they may see or change is object-level policy).
# Issue 4: role and user management is admin-only, except the lists below.
ANY_AUTHENTICATED = {
    "DocumentService": {
        "CreateDocument",
        "GetDocument",
        "BatchGetDocuments",
        "ListDocuments",
        "SearchDocuments",
        "UpdateDocument",
        "DeleteDocument",
    },
    "RoleService": {"ListRoles", "GetRole", "ListMyConfigurations"},
    "UserService": {"GetCurrentUser"},
    # Issue 10: every project RPC is for any authenticated caller (what they may see or
    # change is object-level policy); templates are written by admins only.
    "ProjectService": {
        "CreateProject",
        "GetProject",
        "ListProjects",
        "UpdateProject",
        "DeleteProject",
        "ActivateProject",
        "CompleteProject",
        "ArchiveProject",
        "RestoreProject",
        "AddFeedback",
        "ListFeedback",
        "DeleteFeedback",
        "GetTemplate",
        "ListTemplates",
        "CreateDocumentFromTemplate",
    },
}
SELF_OR_ADMIN = {
    "RoleService": {"ListUserRoles", "CheckRole"},
    "UserService": {"GetUser"},
    # Issue 15: "anyone about themselves; about another user, admins only".
    "AccessService": {
        "ExplainDocumentAccess",
        "ExplainProjectAccess",
        "ExplainConfigurationAccess",
    },
}
# SELF_OR_ADMIN methods whose empty subject field means the caller (issue 15: "user_id empty =
# the caller"): an empty request is about oneself.
EMPTY_IS_SELF = {"ExplainDocumentAccess", "ExplainProjectAccess", "ExplainConfigurationAccess"}
ADMIN_ONLY = {
    "DocumentService": {"UndeleteDocument", "PurgeDocument"},
    "RoleService": {
        "CreateRole",
        "UpdateRole",
        "DeleteRole",
        "AssignRole",
        "RevokeRole",
        "ListRoleMembers",
        "CreateConfiguration",
        "ListConfigurations",
        "DeleteConfiguration",
        "GrantConfiguration",
        "RevokeConfiguration",
        "ListRoleConfigurations",
    },
    "UserService": {"CreateUser", "ListUsers", "UpdateUser", "DeleteUser"},
    "ProjectService": {"CreateTemplate", "UpdateTemplate", "DeleteTemplate"},
    "AuditService": {"ListAuditEntries"},
}
CALLERS = ("anonymous", "free_user", "paid_user", "admin")
# The request field naming the user a SELF_OR_ADMIN RPC is about.
SUBJECT_FIELD = {"ListUserRoles": "user_id", "CheckRole": "user_id", "GetUser": "id"}


def _methods() -> Iterator[MethodDescriptor]:
    """Every method the server serves, from the registry the server itself registers."""
    for binding in served_bindings():
        yield from binding.descriptor.methods


METHODS = list(_methods())


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _rule(method: MethodDescriptor) -> str:
    service = method.containing_service.name
    for rule, table in (
        ("any", ANY_AUTHENTICATED),
        ("self_or_admin", SELF_OR_ADMIN),
        ("admin", ADMIN_ONLY),
    ):
        if method.name in table.get(service, set()):
            return rule
    raise AssertionError(f"{_path(method)} is in no row of the oracle")


def _expected_denial(rule: str, caller: str, about_self: bool) -> grpc.StatusCode | None:
    """The denial the oracle predicts, or None when the call must get past access control."""
    if caller == "anonymous":
        return grpc.StatusCode.UNAUTHENTICATED
    if caller == "admin" or rule == "any" or (rule == "self_or_admin" and about_self):
        return None
    return grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
async def callers(app: App) -> dict[str, support.TestUser | None]:
    return {
        "anonymous": None,
        "free_user": await make_user(app, "free_user"),
        "paid_user": await make_user(app, "paid_user"),
        "admin": await make_user(app, "admin"),
    }


async def _call(
    channel: grpc.aio.Channel, method: MethodDescriptor, request: Message, who: object
) -> grpc.StatusCode:
    stub = channel.unary_unary(
        _path(method),
        request_serializer=type(request).SerializeToString,
        response_deserializer=lambda raw: raw,
    )
    metadata = who.metadata if isinstance(who, support.TestUser) else ()
    try:
        await stub(request, metadata=metadata, timeout=DEADLINE)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_every_rpc_is_in_the_oracle_and_the_policy_table() -> None:
    paths = {_path(m) for m in METHODS}
    for method in METHODS:
        _rule(method)
    assert paths == set(policy.RPC_ACCESS), "policy.RPC_ACCESS and the services disagree"
    assert policy.unlisted_methods(paths) == []
    expected = {"any": policy.Access.AUTHENTICATED, "admin": policy.Access.ADMIN}
    expected["self_or_admin"] = policy.Access.SELF_OR_ADMIN
    for method in METHODS:
        assert policy.RPC_ACCESS[_path(method)] == expected[_rule(method)], _path(method)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method", METHODS, ids=_path)
async def test_empty_request(
    channel: grpc.aio.Channel,
    callers: dict[str, support.TestUser | None],
    method: MethodDescriptor,
    caller: str,
) -> None:
    request = message_factory.GetMessageClass(method.input_type)()
    code = await _call(channel, method, request, callers[caller])
    denial = _expected_denial(_rule(method), caller, about_self=method.name in EMPTY_IS_SELF)
    if denial is None:
        # An empty request may well be INVALID_ARGUMENT or NOT_FOUND, but never refused.
        assert code not in {
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.UNAUTHENTICATED,
        }, code
    else:
        assert code == denial


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method", [m for m in METHODS if m.name in SUBJECT_FIELD], ids=_path)
async def test_self_or_admin_about_oneself(
    channel: grpc.aio.Channel,
    callers: dict[str, support.TestUser | None],
    method: MethodDescriptor,
    caller: str,
) -> None:
    who = callers[caller]
    request = message_factory.GetMessageClass(method.input_type)()
    if who is not None:
        setattr(request, SUBJECT_FIELD[method.name], str(who.id))
    if method.name == "CheckRole":
        request.role = "admin"  # type: ignore[attr-defined]
    code = await _call(channel, method, request, who)
    denial = _expected_denial(_rule(method), caller, about_self=True)
    assert code == (grpc.StatusCode.OK if denial is None else denial)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method", [m for m in METHODS if m.name in EMPTY_IS_SELF], ids=_path)
async def test_self_or_admin_about_someone_else(
    channel: grpc.aio.Channel,
    callers: dict[str, support.TestUser | None],
    method: MethodDescriptor,
    caller: str,
) -> None:
    """Naming another user (here: the admin, or for the admin the free user) is refused to
    everyone but admins."""
    request = message_factory.GetMessageClass(method.input_type)()
    other = callers["free_user" if caller == "admin" else "admin"]
    assert other is not None
    request.user_id = str(other.id)  # type: ignore[attr-defined]
    # A well-formed resource id, so only the subject can make the call fail access control.
    resource = next(f.name for f in method.input_type.fields if f.name != "user_id")
    setattr(request, resource, "00000000-0000-4000-8000-000000000000")
    code = await _call(channel, method, request, callers[caller])
    denial = _expected_denial(_rule(method), caller, about_self=False)
    if denial is None:
        assert code == grpc.StatusCode.NOT_FOUND, code  # no such document, project, config
    else:
        assert code == denial
