"""Function-level policy: the RPC table covers every RPC (deny by default) and agrees with a
plain-Python oracle of the rules."""

from __future__ import annotations

import itertools
import uuid

import pytest

from docgate import policy
from docgate.edge.auth import bearer_token
from docgate.edge.registry import method_paths
from docgate.errors import PermissionDenied, Unauthenticated
from docgate.principal import Principal
from tests.support import served_bindings

ROLE_SETS = [
    frozenset(c)
    for n in range(3)
    for c in itertools.combinations(["admin", "paid_user", "free_user", "editor"], n)
]


def all_methods() -> list[str]:
    """Every served method, from the registry the server registers."""
    return method_paths(served_bindings())


def test_every_rpc_has_a_rule_and_no_rule_is_stale() -> None:
    assert set(policy.RPC_ACCESS) == set(all_methods())


def oracle_may_call(method: str, roles: frozenset[str]) -> bool:
    """The issues' words: admin-only management, self-or-admin reads, the rest open."""
    name = method.rsplit("/", 1)[1]
    open_to_all = {
        "CreateDocument", "GetDocument", "BatchGetDocuments", "ListDocuments", "SearchDocuments",
        "UpdateDocument", "DeleteDocument", "ListRoles", "GetRole", "GetCurrentUser",
        "ListMyConfigurations", "GetUser", "ListUserRoles", "CheckRole",
        "CreateProject", "GetProject", "ListProjects", "UpdateProject", "DeleteProject",
        "ActivateProject", "CompleteProject", "ArchiveProject", "RestoreProject",
        "AddFeedback", "ListFeedback", "DeleteFeedback", "GetTemplate", "ListTemplates",
        "CreateDocumentFromTemplate",
        "ExplainDocumentAccess", "ExplainProjectAccess", "ExplainConfigurationAccess",
    }  # fmt: skip
    return name in open_to_all or "admin" in roles


@pytest.mark.parametrize("roles", ROLE_SETS, ids=lambda r: "+".join(sorted(r)) or "none")
def test_table_agrees_with_oracle(roles: frozenset[str]) -> None:
    principal = Principal(uuid.uuid4(), "p", roles)
    for method in all_methods():
        try:
            policy.check_rpc_access(method, principal)
            allowed = True
        except PermissionDenied:
            allowed = False
        assert allowed == oracle_may_call(method, roles), method


def test_unknown_method_is_denied_even_for_admin() -> None:
    admin = Principal(uuid.uuid4(), "a", frozenset({"admin"}))
    with pytest.raises(PermissionDenied):
        policy.check_rpc_access("/docgate.v1.DocumentService/DropEverything", admin)


def test_self_or_admin() -> None:
    method = "/docgate.v1.UserService/GetUser"
    me = Principal(uuid.uuid4(), "me", frozenset({"free_user"}))
    policy.require_self_or_admin(me, me.user_id, method)
    with pytest.raises(PermissionDenied) as caught:
        policy.require_self_or_admin(me, uuid.uuid4(), method)
    assert caught.value.message == (
        "docgate.v1.UserService/GetUser is available to admins; "
        "a non-admin may only ask about themselves"
    )
    with pytest.raises(PermissionDenied) as caught:
        policy.subject_user_id(me, "not-a-uuid", "id", method)
    assert "only ask about themselves" in caught.value.message
    admin = Principal(uuid.uuid4(), "a", frozenset({"admin"}))
    policy.require_self_or_admin(admin, uuid.uuid4(), method)


def test_a_refused_method_is_named() -> None:
    me = Principal(uuid.uuid4(), "me", frozenset({"free_user"}))
    with pytest.raises(PermissionDenied) as caught:
        policy.check_rpc_access("/docgate.v1.RoleService/CreateRole", me)
    assert caught.value.message == "docgate.v1.RoleService/CreateRole is available to admins only"


def test_show_deleted_is_admin_only() -> None:
    with pytest.raises(PermissionDenied):
        policy.document_visibility(Principal(uuid.uuid4(), "p", frozenset()), show_deleted=True)


def test_public_methods() -> None:
    assert policy.is_public_method("/grpc.health.v1.Health/Check")
    assert policy.is_public_method("/grpc.reflection.v1alpha.ServerReflection/X")
    assert not policy.is_public_method("/docgate.v1.UserService/GetCurrentUser")


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Basic abc"),),
        (("authorization", "Bearer"),),
        (("authorization", "Bearer "),),
        (("authorization", "Bearer a"), ("authorization", "Bearer b")),
        (("authorization", "Bearer " + "a" * 9000),),
        (("x-other", "Bearer a"),),
    ],
)
def test_bearer_header_shapes_are_refused(metadata: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(Unauthenticated):
        bearer_token(metadata)


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token((("authorization", "bearer tok"),)) == "tok"
    assert bearer_token((("authorization", "Bearer tok"),)) == "tok"
