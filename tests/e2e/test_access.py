"""AccessService through a real server: who may ask, hidden is absent, the rules an answer
shows, and configuration grants judged by the database clock."""

from __future__ import annotations

import uuid

import grpc
import grpc.aio
from docgate.v1 import access_pb2 as pb
from docgate.v1 import access_pb2_grpc, documents_pb2, documents_pb2_grpc, roles_pb2_grpc
from docgate.v1 import roles_pb2 as rpb
from sqlalchemy import text

from docgate.bootstrap import App
from tests.conformance.projects_support import ACTIVE, ARCHIVED, DRAFT, project_in
from tests.conformance.projects_support import Stub as Projects
from tests.conformance.support import DEADLINE, answer, create
from tests.support import TestUser, expect_error, make_user, unique

CODE = grpc.StatusCode
VISIBLE, HIDDEN = pb.AccessExplanation.VISIBLE, pb.AccessExplanation.HIDDEN
ALLOW, DENY = pb.RuleEvaluation.ALLOW, pb.RuleEvaluation.DENY
NA = pb.RuleEvaluation.NOT_APPLICABLE


def _stub(channel: grpc.aio.Channel) -> access_pb2_grpc.AccessServiceStub:
    return access_pb2_grpc.AccessServiceStub(channel)


def _outcomes(explanation: pb.AccessExplanation) -> dict[str, int]:
    return {rule.name: rule.outcome for rule in explanation.rules}


async def _explain_doc(
    channel: grpc.aio.Channel, who: TestUser, doc_id: str, user_id: str = ""
) -> pb.AccessExplanation:
    request = pb.ExplainDocumentAccessRequest(document_id=doc_id, user_id=user_id)
    return await _stub(channel).ExplainDocumentAccess(
        request, metadata=who.metadata, timeout=DEADLINE
    )


async def test_a_paid_document_for_a_free_user_explained_by_an_admin(
    app: App, channel: grpc.aio.Channel, admin: TestUser
) -> None:
    custom = unique("c")
    roles = roles_pb2_grpc.RoleServiceStub(channel)
    await roles.CreateRole(rpb.CreateRoleRequest(name=custom), metadata=admin.metadata)
    owner, free = await make_user(app, "free_user"), await make_user(app, "free_user", custom)
    docs = documents_pb2_grpc.DocumentServiceStub(channel)
    doc = await create(docs, owner, is_public=True, requires_paid_access=True)
    got = await _explain_doc(channel, admin, doc.id, str(free.id))
    assert (got.decision, got.can_update, got.can_delete) == (HIDDEN, False, False)
    assert (got.resource_id, got.user_id) == (doc.id, str(free.id))
    assert _outcomes(got) == {
        "AUTHENTICATED": ALLOW, "DELETED": ALLOW, "ADMIN_BYPASS": NA, "OWNER": NA,
        "PUBLIC": ALLOW, "PAID_TIER": DENY, "MODIFY": DENY,
    }  # fmt: skip
    assert all(rule.explanation.endswith(".") for rule in got.rules)
    tiers = {role.name: role.tier for role in got.roles}
    assert tiers == {"free_user": pb.ConsideredRole.FREE, custom: pb.ConsideredRole.FREE}
    assert [role.name for role in got.roles] == sorted(tiers)
    # The owner, asking about themselves (user_id empty): visible, and theirs to change.
    mine = await _explain_doc(channel, owner, doc.id)
    assert (mine.decision, mine.can_update, mine.can_delete) == (VISIBLE, True, True)
    assert _outcomes(mine)["OWNER"] == ALLOW and _outcomes(mine)["PAID_TIER"] == DENY


async def test_an_admin_sees_the_explanation_of_a_deleted_document(
    app: App, channel: grpc.aio.Channel, admin: TestUser
) -> None:
    owner = await make_user(app, "paid_user")
    docs = documents_pb2_grpc.DocumentServiceStub(channel)
    doc = await create(docs, owner, is_public=True)
    await docs.DeleteDocument(
        documents_pb2.DeleteDocumentRequest(id=doc.id), metadata=owner.metadata
    )
    about_owner = await _explain_doc(channel, admin, doc.id, str(owner.id))
    assert (about_owner.decision, about_owner.can_update) == (HIDDEN, False)
    assert _outcomes(about_owner)["DELETED"] == DENY
    about_admin = await _explain_doc(channel, admin, doc.id)
    assert about_admin.decision == HIDDEN  # GetDocument without show_deleted: NOT_FOUND
    assert _outcomes(about_admin)["ADMIN_BYPASS"] == ALLOW
    # The owner no longer sees it: their explanation is the NOT_FOUND of a missing id.
    error = await expect_error(_explain_doc(channel, owner, doc.id), CODE.NOT_FOUND)
    missing = await expect_error(_explain_doc(channel, owner, str(uuid.uuid4())), CODE.NOT_FOUND)
    assert answer(error) == answer(missing)


async def test_hidden_is_absent_byte_for_byte(app: App, channel: grpc.aio.Channel) -> None:
    owner, stranger = await make_user(app), await make_user(app, "paid_user")
    docs = documents_pb2_grpc.DocumentServiceStub(channel)
    private = await create(docs, owner, is_public=False)
    hidden = await expect_error(_explain_doc(channel, stranger, private.id), CODE.NOT_FOUND)
    absent = await expect_error(_explain_doc(channel, stranger, str(uuid.uuid4())), CODE.NOT_FOUND)
    get = await expect_error(
        docs.GetDocument(
            documents_pb2.GetDocumentRequest(id=private.id), metadata=stranger.metadata
        ),
        CODE.NOT_FOUND,
    )
    assert answer(hidden) == answer(absent) == answer(get)
    projects = Projects(channel)
    draft = await project_in(projects, owner, DRAFT)
    stub = _stub(channel)
    md = stranger.metadata
    hidden = await expect_error(
        stub.ExplainProjectAccess(pb.ExplainProjectAccessRequest(project_id=draft.id), metadata=md),
        CODE.NOT_FOUND,
    )
    absent = await expect_error(
        stub.ExplainProjectAccess(
            pb.ExplainProjectAccessRequest(project_id=str(uuid.uuid4())), metadata=md
        ),
        CODE.NOT_FOUND,
    )
    assert answer(hidden) == answer(absent)


async def test_about_another_user_admins_only(app: App, channel: grpc.aio.Channel) -> None:
    asker, other = await make_user(app, "paid_user"), await make_user(app)
    docs = documents_pb2_grpc.DocumentServiceStub(channel)
    doc = await create(docs, other, is_public=True)
    for user_id in (str(other.id), "not-a-uuid"):
        error = await expect_error(
            _explain_doc(channel, asker, doc.id, user_id), CODE.PERMISSION_DENIED, "NOT_SELF"
        )
        assert "ExplainDocumentAccess" in (error.details() or "")
    stub = _stub(channel)
    configuration = pb.ExplainConfigurationAccessRequest(
        configuration_id=str(uuid.uuid4()), user_id=str(other.id)
    )
    await expect_error(
        stub.ExplainConfigurationAccess(configuration, metadata=asker.metadata),
        CODE.PERMISSION_DENIED,
        "NOT_SELF",
    )
    # Oneself by id is the same as by omission.
    by_id = await _explain_doc(channel, asker, doc.id, str(asker.id))
    assert by_id == await _explain_doc(channel, asker, doc.id)


async def test_errors_of_admins_and_unknown_users(
    app: App, channel: grpc.aio.Channel, admin: TestUser
) -> None:
    docs = documents_pb2_grpc.DocumentServiceStub(channel)
    doc = await create(docs, admin)
    await expect_error(
        _explain_doc(channel, admin, doc.id, "not-a-uuid"), CODE.INVALID_ARGUMENT, "INVALID_ID"
    )
    await expect_error(
        _explain_doc(channel, admin, doc.id, str(uuid.uuid4())), CODE.NOT_FOUND, "USER_NOT_FOUND"
    )
    await expect_error(_explain_doc(channel, admin, ""), CODE.INVALID_ARGUMENT, "INVALID_ID")
    inactive = await make_user(app, "admin", active=False)
    got = await _explain_doc(channel, admin, doc.id, str(inactive.id))
    assert (got.decision, got.can_update) == (HIDDEN, False)
    assert _outcomes(got)["AUTHENTICATED"] == DENY


async def test_project_explanations(app: App, channel: grpc.aio.Channel, admin: TestUser) -> None:
    owner, stranger = await make_user(app), await make_user(app)
    projects = Projects(channel)
    stub = _stub(channel)

    async def explain(who: TestUser, project_id: str, user_id: str = "") -> pb.AccessExplanation:
        request = pb.ExplainProjectAccessRequest(project_id=project_id, user_id=user_id)
        return await stub.ExplainProjectAccess(request, metadata=who.metadata, timeout=DEADLINE)

    active = await project_in(projects, owner, ACTIVE)
    theirs = await explain(stranger, active.id)
    assert (theirs.decision, theirs.can_update, theirs.can_delete) == (VISIBLE, False, False)
    assert _outcomes(theirs)["SHARED_STATE"] == ALLOW and _outcomes(theirs)["OWNER"] == NA
    mine = await explain(owner, active.id)
    assert (mine.can_update, mine.can_delete) == (True, False)
    assert _outcomes(mine)["DELETABLE_STATE"] == DENY
    archived = await project_in(projects, owner, ARCHIVED)
    about = await explain(admin, archived.id, str(stranger.id))
    assert (about.decision, about.can_update, about.can_delete) == (HIDDEN, False, False)
    assert _outcomes(about)["SHARED_STATE"] == NA
    assert (await explain(owner, archived.id)).can_delete


async def test_configuration_grants_by_the_database_clock(
    app: App, channel: grpc.aio.Channel, admin: TestUser
) -> None:
    roles = roles_pb2_grpc.RoleServiceStub(channel)
    md = admin.metadata
    names = [unique("r") for _ in range(3)]
    for name in names:
        await roles.CreateRole(rpb.CreateRoleRequest(name=name), metadata=md)
    user = await make_user(app, *names)
    made = await roles.CreateConfiguration(
        rpb.CreateConfigurationRequest(name=unique("f")),
        metadata=md,
    )
    for name, level in zip(names, (2, 5, 9), strict=True):
        grant = rpb.GrantConfigurationRequest(
            role=name, configuration_id=made.id, access_level=level
        )
        grant.expire_time.FromSeconds(4_000_000_000)
        await roles.GrantConfiguration(grant, metadata=md)
    # The level-9 grant expires: moved into the past directly in the database.
    async with app.engine.connect() as conn:
        await conn.execute(
            text(
                "UPDATE role_configurations SET expires_at = now() - interval '1 second'"
                " WHERE configuration_id = :c AND access_level = 9"
            ),
            {"c": uuid.UUID(made.id)},
        )
        await conn.commit()
    request = pb.ExplainConfigurationAccessRequest(configuration_id=made.id)
    got = await _stub(channel).ExplainConfigurationAccess(request, metadata=user.metadata)
    assert got.access_level == 5 and got.user_active
    assert [(g.role, g.access_level) for g in got.grants] == [(names[1], 5)]
    assert [(g.role, g.access_level) for g in got.lower_grants] == [(names[0], 2)]
    assert [(g.role, g.access_level) for g in got.expired_grants] == [(names[2], 9)]
    assert all(g.granted_by == str(admin.id) for g in got.grants)
    assert got.evaluate_time.seconds > 0
    mine = await roles.ListMyConfigurations(
        rpb.ListMyConfigurationsRequest(), metadata=user.metadata
    )
    assert [c.access_level for c in mine.configurations] == [got.access_level]
    unknown = pb.ExplainConfigurationAccessRequest(configuration_id=str(uuid.uuid4()))
    await expect_error(
        _stub(channel).ExplainConfigurationAccess(unknown, metadata=user.metadata),
        CODE.NOT_FOUND,
        "CONFIGURATION_NOT_FOUND",
    )
