"""Feedback on projects: who may add, list and delete it follows from who may see the project.

Every statement joins or locks the project through the ORM, so the listener's project rule
decides: feedback on a project the caller cannot see is as absent as the project.
"""

from __future__ import annotations

import uuid
from typing import Final

from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from docgate import mapping, pagination
from docgate.db import audit
from docgate.db.models import Feedback, Project
from docgate.db.uow import page_tokens, principal_of
from docgate.errors import FailedPrecondition, PermissionDenied, feedback_not_found
from docgate.pagination import KeyKind, Keyset
from docgate.policy import ProjectState
from docgate.repositories.projects import ProjectRepository
from docgate.v1 import projects_pb2

_NEWEST_FIRST: Final = Keyset((KeyKind.TIMESTAMP, KeyKind.UUID))
_FEEDBACK: Final[Table] = Feedback.__table__  # type: ignore[assignment]


class FeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._principal = principal_of(session)
        self._projects = ProjectRepository(session)

    async def add(
        self, project_id: uuid.UUID, content: str, score: float | None
    ) -> projects_pb2.Feedback:
        """Only while the project is ACTIVE. The project row is held FOR SHARE until commit:
        concurrent feedback does not wait for itself, but a state change waits, so no feedback
        lands on a project that was completed or archived meanwhile."""
        project = await self._projects.lock(project_id, share=True)
        if project.state is not ProjectState.ACTIVE:
            raise FailedPrecondition(
                "feedback is accepted only while the project is ACTIVE",
                reason="PROJECT_NOT_ACTIVE",
                metadata={"state": project.state.name},
            )
        values = {
            "project_id": project_id,
            "author_id": self._principal.user_id,
            "content": content,
            "score": score,
        }
        stmt = _FEEDBACK.insert().values(values).returning(*_FEEDBACK.c)
        row = (await self._session.execute(stmt)).mappings().one()
        changes = audit.fields(content=(None, None), score=(None, score))
        audit.note(self._session, f"projects/{project_id}/feedback/{row['id']}", changes)
        return mapping.feedback(row)

    async def list(
        self, project_id: uuid.UUID, page_size: int, page_token: str
    ) -> projects_pb2.ListFeedbackResponse:
        await self._projects.require_visible(project_id)
        fingerprint = pagination.fingerprint("feedback", project_id)
        stmt = select(_FEEDBACK).where(Feedback.project_id == project_id)
        start = _NEWEST_FIRST.start(page_tokens(self._session), page_token, fingerprint)
        if start is not None:
            stmt = stmt.where(tuple_(Feedback.create_time, Feedback.id) < tuple_(*start))
        stmt = stmt.order_by(Feedback.create_time.desc(), Feedback.id.desc())
        rows = (await self._session.execute(stmt.limit(_NEWEST_FIRST.limit(page_size)))).all()
        kept, next_token = _NEWEST_FIRST.page(
            page_tokens(self._session),
            rows,
            page_size,
            fingerprint,
            lambda row: (row.create_time, row.id),
        )
        return projects_pb2.ListFeedbackResponse(
            feedback=[mapping.feedback(row._mapping) for row in kept], next_page_token=next_token
        )

    async def delete(self, feedback_id: uuid.UUID) -> None:
        """Its author or an admin; on a project the caller cannot see: NOT_FOUND."""
        stmt = (
            select(Feedback.author_id)
            .join(Project, Project.id == Feedback.project_id)
            .where(Feedback.id == feedback_id)
        )
        author_id = await self._session.scalar(stmt)
        if author_id is None:
            raise feedback_not_found()
        if not (self._principal.is_admin or author_id == self._principal.user_id):
            raise PermissionDenied(
                "only its author or an admin may delete feedback", reason="NOT_FEEDBACK_AUTHOR"
            )
        audit.note(self._session, f"feedback/{feedback_id}")
        await self._session.execute(delete(Feedback).where(Feedback.id == feedback_id))
