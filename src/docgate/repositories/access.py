"""AccessService's reads: why a user can or cannot see and change a row.

One statement per explanation reads the row as the *asker* may see it (an ORM statement, so the
do_orm_execute listener adds the asker's policy: a non-admin's hidden row is not found, exactly
like a missing one; an admin's includes deleted documents) and evaluates on it, for the *user
being explained*, the read predicate of the read paths (docgate.policy.document_predicate,
project_predicate) next to every rule it is built from (DOCUMENT_POLICY, PROJECT_POLICY). The
decision is that predicate's value; the rules only say why.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, policy
from docgate.db.filtering import SHOW_DELETED
from docgate.db.models import Document, Project, Role, RoleConfiguration, User, UserRole
from docgate.db.uow import principal_of
from docgate.errors import document_not_found, project_not_found, user_not_found
from docgate.principal import Principal
from docgate.repositories.configurations import require_configuration
from docgate.repositories.users import role_names
from docgate.v1 import access_pb2, roles_pb2


@dataclass(frozen=True)
class Subject:
    """The user an explanation is about. ``principal`` is None when they are deactivated: the
    door refuses them, so the policy sees no caller (Audience.NOBODY)."""

    user_id: uuid.UUID
    roles: frozenset[str]
    principal: Principal | None

    def considered_roles(self) -> list[access_pb2.ConsideredRole]:
        return [
            mapping.considered_role(name, policy.role_tier(name).name)
            for name in sorted(self.roles)
        ]


def _rule_columns(
    rules: Sequence[policy.Rule], who: object, cls: object, caller: uuid.UUID
) -> list[ColumnElement[bool]]:
    return [rule.clause(who, cls, caller).label(f"rule_{i}") for i, rule in enumerate(rules)]


def _held(rules: Sequence[policy.Rule], row: object) -> dict[str, bool]:
    return {rule.name: bool(getattr(row, f"rule_{i}")) for i, rule in enumerate(rules)}


def _rules(evaluations: Sequence[policy.Evaluation]) -> list[access_pb2.RuleEvaluation]:
    return [mapping.rule_evaluation(e.rule.name, e.outcome.name, e.sentence) for e in evaluations]


class AccessRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._asker = principal_of(session)

    async def subject(self, user_id: uuid.UUID) -> Subject:
        """The caller themselves as the door saw them; anyone else as stored now."""
        if user_id == self._asker.user_id:
            return Subject(user_id, self._asker.roles, self._asker)
        stmt = (
            select(User.username, User.is_active, role_names())
            .outerjoin(UserRole, UserRole.user_id == User.id)
            .outerjoin(Role, Role.id == UserRole.role_id)
            .where(User.id == user_id)
            .group_by(User.id)
        )
        row = (await self._session.execute(stmt)).first()
        if row is None:
            raise user_not_found()
        roles = frozenset(row.roles)
        principal = Principal(user_id, row.username, roles) if row.is_active else None
        return Subject(user_id, roles, principal)

    async def document(self, subject: Subject, doc_id: uuid.UUID) -> access_pb2.AccessExplanation:
        who = policy.audience(subject.principal)
        rules = policy.DOCUMENT_POLICY.rules
        visible = policy.document_predicate(who, Document, subject.user_id)
        stmt = (
            select(
                Document.owner_id,
                visible.label("visible"),
                *_rule_columns(rules, who, Document, subject.user_id),
            )
            .where(Document.id == doc_id)
            .execution_options(**{SHOW_DELETED: self._asker.is_admin})
        )
        row = (await self._session.execute(stmt)).first()
        if row is None:
            raise document_not_found()
        verdict = policy.explain_document(
            subject.principal, _held(rules, row), bool(row.visible), row.owner_id
        )
        return self._explanation(doc_id, subject, verdict)

    async def project(
        self, subject: Subject, project_id: uuid.UUID
    ) -> access_pb2.AccessExplanation:
        who = policy.project_audience(subject.principal)
        rules = policy.PROJECT_POLICY.rules
        visible = policy.project_predicate(who, Project, subject.user_id)
        stmt = select(
            Project.owner_id,
            Project.state,
            visible.label("visible"),
            *_rule_columns(rules, who, Project, subject.user_id),
        ).where(Project.id == project_id)
        row = (await self._session.execute(stmt)).first()
        if row is None:
            raise project_not_found()
        verdict = policy.explain_project(
            subject.principal, _held(rules, row), bool(row.visible), row.owner_id, row.state
        )
        return self._explanation(project_id, subject, verdict)

    def _explanation(
        self, resource_id: uuid.UUID, subject: Subject, verdict: policy.Explanation
    ) -> access_pb2.AccessExplanation:
        return mapping.access_explanation(
            resource_id=resource_id,
            user_id=subject.user_id,
            visible=verdict.visible,
            can_update=verdict.can_update,
            can_delete=verdict.can_delete,
            roles=subject.considered_roles(),
            rules=_rules(verdict.evaluations),
        )

    async def configuration(
        self, subject: Subject, configuration_id: uuid.UUID
    ) -> access_pb2.ConfigurationAccessExplanation:
        """Every grant of the user's roles on the configuration, each judged in force or
        expired by the database clock of this one statement (``now``)."""
        await require_configuration(self._session, configuration_id)
        stmt = (
            select(
                Role.name.label("role"),
                RoleConfiguration.configuration_id,
                RoleConfiguration.access_level,
                RoleConfiguration.granted_by,
                RoleConfiguration.granted_at,
                RoleConfiguration.expires_at,
                policy.grant_in_force(RoleConfiguration).label("in_force"),
                func.now().label("now"),
            )
            .join(Role, Role.id == RoleConfiguration.role_id)
            .join(UserRole, UserRole.role_id == RoleConfiguration.role_id)
            .where(
                UserRole.user_id == subject.user_id,
                RoleConfiguration.configuration_id == configuration_id,
            )
            .order_by(RoleConfiguration.access_level.desc(), Role.name)
        )
        rows = (await self._session.execute(stmt)).all()
        now = rows[0].now if rows else await self._session.scalar(select(func.now()))
        assert now is not None
        in_force = [row for row in rows if row.in_force]
        best = in_force[0].access_level if in_force else 0
        return mapping.configuration_access(
            configuration_id=configuration_id,
            user_id=subject.user_id,
            # A deactivated user's calls are all refused: no access, whatever the grants.
            access_level=best if subject.principal is not None else 0,
            grants=[_grant(r) for r in in_force if r.access_level == best],
            lower_grants=[_grant(r) for r in in_force if r.access_level < best],
            expired_grants=[_grant(r) for r in rows if not r.in_force],
            evaluate_time=now,
            roles=subject.considered_roles(),
            user_active=subject.principal is not None,
        )


def _grant(row: Any) -> roles_pb2.ConfigurationGrant:
    return mapping.grant(
        role=row.role,
        configuration_id=row.configuration_id,
        access_level=row.access_level,
        granted_by=row.granted_by,
        granted_at=row.granted_at,
        expires_at=row.expires_at,
    )
