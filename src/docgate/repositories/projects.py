"""Projects: create, read, list and change them under the caller's project policy.

Every statement here is an ORM statement on Project, so the do_orm_execute listener adds the
caller's visibility rule (docgate.policy.project_visibility): a hidden project is not found,
exactly like one that does not exist. Changes first lock the row (FOR UPDATE) and then check
owner, etag and state in Python, so two racing changes with one etag serialise and the second
is ABORTED. feedback_count and average_score are computed on every read, in the same statement
as the project (a LATERAL aggregate over the feedback index), so a page of 50 is one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Select, delete, func, literal, select, true, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination, policy
from docgate.db import audit
from docgate.db.models import Feedback, Project
from docgate.db.uow import page_tokens, principal_of
from docgate.errors import (
    Aborted,
    FailedPrecondition,
    PermissionDenied,
    project_not_found,
    request_id_reused,
)
from docgate.pagination import KeyKind, Keyset
from docgate.policy import ProjectState, StateChange
from docgate.v1 import projects_pb2

RECENT_FEEDBACK: Final = 20
DELETABLE_STATES: Final = policy.DELETABLE_PROJECT_STATES
_MAY_NOT_MODIFY: Final = "only the owner or an admin may change this project"

_STATS = (
    select(
        func.count(Feedback.id).label("feedback_count"),
        func.avg(Feedback.score).label("average_score"),
    )
    .where(Feedback.project_id == Project.id)
    .lateral("stats")
)
_COLUMNS = (
    Project.id,
    Project.name,
    Project.description,
    Project.state,
    Project.owner_id,
    Project.create_time,
    Project.update_time,
    Project.version,
    _STATS.c.feedback_count,
    _STATS.c.average_score,
)
# Scores are 1..5, so 0 puts unscored projects after every scored one in "average_score desc".
_AVERAGE_OR_ZERO = func.coalesce(_STATS.c.average_score, literal(0.0))
# order_by → (sort expression, descending, keyset)
ORDER_BY: Final[Mapping[str, tuple[Any, bool, Keyset]]] = {
    "create_time desc": (Project.create_time, True, Keyset((KeyKind.TIMESTAMP, KeyKind.UUID))),
    "name": (Project.name, False, Keyset((KeyKind.TEXT, KeyKind.UUID))),
    "average_score desc": (_AVERAGE_OR_ZERO, True, Keyset((KeyKind.NUMBER, KeyKind.UUID))),
}
DEFAULT_ORDER_BY: Final = "create_time desc"


def _projects() -> Select[Any]:
    return select(*_COLUMNS).join(_STATS, true())


@dataclass(frozen=True)
class ProjectQuery:
    page_size: int
    page_token: str
    order_by: str  # a key of ORDER_BY
    state: ProjectState | None = None
    owner_id: uuid.UUID | None = None

    def fingerprint(self) -> str:
        return pagination.fingerprint("projects", self.order_by, self.state, self.owner_id)


class ProjectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._principal = principal_of(session)

    async def create(
        self,
        name: str,
        description: str,
        request_id: uuid.UUID | None,
        request_hash: bytes | None = None,
    ) -> projects_pb2.Project:
        """In DRAFT, owned by the caller; a retry of the same request with the same request_id
        returns the first project, another request with it is REQUEST_ID_REUSED."""
        owner_id = self._principal.user_id
        stmt = pg_insert(Project).values(
            name=name,
            description=description,
            owner_id=owner_id,
            request_id=request_id,
            request_hash=request_hash,
        )
        if request_id is not None:
            stmt = stmt.on_conflict_do_nothing(constraint="uq_projects_owner_id_request_id")
        project_id = await self._session.scalar(stmt.returning(Project.id))
        if project_id is None:  # the first call's project, committed and ours
            first = select(Project.id, Project.request_hash).where(
                Project.owner_id == owner_id, Project.request_id == request_id
            )
            original = (await self._session.execute(first)).one()
            if original.request_hash not in (None, request_hash) and request_hash is not None:
                raise request_id_reused()
            project_id = original.id
        changes = audit.fields(name=(None, name), description=(None, description))
        audit.note(self._session, f"projects/{project_id}", changes)
        return await self.get(project_id)

    async def get(self, project_id: uuid.UUID, *, full: bool = False) -> projects_pb2.Project:
        row = (await self._session.execute(_projects().where(Project.id == project_id))).first()
        if row is None:
            raise project_not_found()
        recent: list[projects_pb2.Feedback] = []
        if full:  # one more statement, bounded by RECENT_FEEDBACK
            newest = (
                select(Feedback.__table__)
                .where(Feedback.project_id == project_id)
                .order_by(Feedback.create_time.desc(), Feedback.id.desc())
                .limit(RECENT_FEEDBACK)
            )
            rows = (await self._session.execute(newest)).mappings()
            recent = [mapping.feedback(feedback) for feedback in rows]
        return mapping.project(row._mapping, recent)

    async def list(self, query: ProjectQuery) -> projects_pb2.ListProjectsResponse:
        sort, descending, keyset = ORDER_BY[query.order_by]
        fingerprint = query.fingerprint()
        stmt = _projects()
        if query.state is not None:
            stmt = stmt.where(Project.state == query.state)
        if query.owner_id is not None:
            stmt = stmt.where(Project.owner_id == query.owner_id)
        start = keyset.start(page_tokens(self._session), query.page_token, fingerprint)
        if start is not None:
            keys, bound = tuple_(sort, Project.id), tuple_(*start)
            stmt = stmt.where(keys < bound if descending else keys > bound)
        order = (sort.desc(), Project.id.desc()) if descending else (sort, Project.id)
        stmt = stmt.add_columns(sort.label("sort_key")).order_by(*order)
        rows = (await self._session.execute(stmt.limit(keyset.limit(query.page_size)))).all()
        kept, next_token = keyset.page(
            page_tokens(self._session),
            rows,
            query.page_size,
            fingerprint,
            lambda row: (row.sort_key, row.id),
        )
        return projects_pb2.ListProjectsResponse(
            projects=[mapping.project(row._mapping) for row in kept], next_page_token=next_token
        )

    async def require_visible(self, project_id: uuid.UUID) -> None:
        if await self._session.scalar(select(Project.id).where(Project.id == project_id)) is None:
            raise project_not_found()

    async def lock(self, project_id: uuid.UUID, *, share: bool = False) -> Any:
        """The project's owner, state and version, locked (FOR SHARE: against state changes
        only); NOT_FOUND when it is hidden or absent."""
        stmt = select(Project.owner_id, Project.state, Project.archived_from, Project.version)
        stmt = stmt.where(Project.id == project_id).with_for_update(read=share)
        row = (await self._session.execute(stmt)).first()
        if row is None:
            raise project_not_found()
        return row

    async def require_changeable(self, project_id: uuid.UUID, *, share: bool = False) -> Any:
        """The locked row of a project the caller may change (owner or admin)."""
        row = await self.lock(project_id, share=share)
        if not policy.may_modify_project(self._principal, row.owner_id):
            raise PermissionDenied(_MAY_NOT_MODIFY, reason="NOT_PROJECT_OWNER")
        return row

    async def require_attachable(self, project_id: uuid.UUID) -> None:
        """A document may be put in the project: the caller may change it and it is not
        archived. Held FOR SHARE until the transaction ends, so it cannot be archived
        meanwhile."""
        row = await self.require_changeable(project_id, share=True)
        if row.state is ProjectState.ARCHIVED:
            raise FailedPrecondition(
                "documents cannot be added to an archived project",
                reason="PROJECT_ARCHIVED",
                metadata={"state": row.state.name},
            )

    async def _changeable(self, project_id: uuid.UUID, version: int | None) -> Any:
        row = await self.require_changeable(project_id)
        if version is not None and version != row.version:
            raise Aborted(
                "the project changed since that etag was read; read it again",
                reason="ETAG_MISMATCH",
            )
        return row

    async def _write(self, project_id: uuid.UUID, values: Mapping[str, Any]) -> None:
        stmt = (
            update(Project)
            .where(Project.id == project_id)
            .values(**values, version=Project.version + 1, update_time=func.now())
            .execution_options(synchronize_session=False)
        )
        await self._session.execute(stmt)

    async def update(
        self, project_id: uuid.UUID, changes: Mapping[str, str], version: int | None
    ) -> projects_pb2.Project:
        await self._changeable(project_id, version)
        before = await self.get(project_id)
        changed = {k: (getattr(before, k), v) for k, v in changes.items()}
        audit.note(self._session, f"projects/{project_id}", audit.fields(**changed))
        await self._write(project_id, changes)
        return await self.get(project_id)

    async def change_state(
        self, project_id: uuid.UUID, change: StateChange, version: int | None
    ) -> projects_pb2.Project:
        row = await self._changeable(project_id, version)
        new = policy.next_state(change, row.state, row.archived_from)
        archived_from = row.state if new is ProjectState.ARCHIVED else None
        changes = audit.fields(state=(row.state, new))
        audit.note(self._session, f"projects/{project_id}", changes)
        await self._write(project_id, {"state": new, "archived_from": archived_from})
        return await self.get(project_id)

    async def delete(self, project_id: uuid.UUID, version: int | None) -> None:
        """Only DRAFT or ARCHIVED; feedback goes with it, documents stay (project_id NULL)."""
        row = await self._changeable(project_id, version)
        if row.state not in DELETABLE_STATES:
            raise FailedPrecondition(
                "only DRAFT or ARCHIVED projects can be deleted; archive it first",
                reason="PROJECT_NOT_DELETABLE",
                metadata={"state": row.state.name},
            )
        audit.note(self._session, f"projects/{project_id}")
        stmt = delete(Project).where(Project.id == project_id)
        await self._session.execute(stmt.execution_options(synchronize_session=False))
