"""Demo data for dev mode: three users, one per built-in role, documents covering every flag
combination, projects in every state with feedback, and one template. Seeded once, on the first
start of an empty embedded database."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from docgate.db.models import Document, Feedback, Project, Template, User
from docgate.policy import ProjectState
from docgate.repositories.users import UserRepository

DEMO_USERS = (("alice", "admin"), ("bob", "paid_user"), ("carol", "free_user"))
DEMO_TEMPLATE = "meeting-notes"
_TEMPLATE_BODY = "# {{topic}}\n\nDate: {{date}}\nAttendees: {{attendees}}\n\n## Notes\n\n"
# (owner, name, state, archived_from); bob's projects collect feedback from alice and carol.
_PROJECTS = (
    ("bob", "Website relaunch", ProjectState.ACTIVE, None),
    ("bob", "Annual report", ProjectState.COMPLETED, None),
    ("bob", "Next year's plan", ProjectState.DRAFT, None),
    ("carol", "Old intranet", ProjectState.ARCHIVED, ProjectState.COMPLETED),
)
_FEEDBACK = (("alice", "Clear goals, good pace.", 4.5), ("carol", "Could use a timeline.", None))


async def seed_if_empty(session: AsyncSession) -> bool:
    """Seed when there are no users yet; return whether it did."""
    if await session.scalar(select(func.count()).select_from(User)):
        return False
    repo = UserRepository(session)
    owners: list[tuple[str, uuid.UUID]] = []
    for name, role in DEMO_USERS:
        user = await repo.create(name, f"{name}@example.com", [role])
        owners.append((name, uuid.UUID(user.id)))
    now = datetime.now(UTC)
    rows = []
    for (name, owner), (public, paid, deleted) in itertools.product(
        owners, itertools.product((False, True), repeat=3)
    ):
        flags = ", ".join(
            word for word, on in (("public", public), ("paid", paid), ("deleted", deleted)) if on
        )
        rows.append(
            {
                "title": f"{name}'s {flags or 'private'} note",
                "content": f"A demo document: {flags or 'private, free, live'}.",
                "owner_id": owner,
                "is_public": public,
                "requires_paid_access": paid,
                "is_deleted": deleted,
                "delete_time": now if deleted else None,
            }
        )
    await session.execute(insert(Document), rows)
    await _seed_projects(session, dict(owners))
    return True


async def _seed_projects(session: AsyncSession, users: dict[str, uuid.UUID]) -> None:
    await session.execute(
        insert(Template).values(
            name=DEMO_TEMPLATE,
            title="Meeting notes",
            description="Notes of one meeting: fill in topic, date and attendees.",
            body=_TEMPLATE_BODY,
        )
    )
    for owner, name, state, archived_from in _PROJECTS:
        project_id = await session.scalar(
            insert(Project)
            .values(name=name, owner_id=users[owner], state=state, archived_from=archived_from)
            .returning(Project.id)
        )
        if state in (ProjectState.ACTIVE, ProjectState.COMPLETED):
            await session.execute(
                insert(Feedback),
                [
                    {
                        "project_id": project_id,
                        "author_id": users[author],
                        "content": text,
                        "score": score,
                    }
                    for author, text, score in _FEEDBACK
                ],
            )
