"""The safety net from the seed design: every ORM statement run through a docgate session sees
only the documents and projects the session's caller may see.

The `do_orm_execute` listener adds `with_loader_criteria(Document, policy...)` and
`with_loader_criteria(Project, policy...)` to ORM SELECT,
UPDATE and DELETE statements (the option propagates to relationship and column loads of the
same statement, so those are skipped). The predicate comes from docgate.policy; the caller is
the one the session carries (docgate.db.uow.principal_of). Admins may pass the execution option
``show_deleted=True`` to include soft-deleted rows; for anyone else that option raises
PermissionDenied. The composition root installs the listener on its session factory.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, with_loader_criteria

from docgate.db.models import Document, Project
from docgate.db.uow import PRINCIPAL
from docgate.policy import document_visibility, project_visibility
from docgate.principal import Principal

SHOW_DELETED = "show_deleted"
_INSTALLED = "_docgate_policy_installed"


def install_document_policy(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """Filter every ORM statement of the sessions ``session_factory`` makes."""
    session_class = session_factory.kw["sync_session_class"]
    # Marked on the class itself, not asked of event.contains: SQLAlchemy's registry is keyed
    # by id(), and a new class at the address of a collected one (every app builds its own,
    # docgate.db.engine) was reported as listening already, so it ran unfiltered.
    if not session_class.__dict__.get(_INSTALLED, False):
        event.listen(session_class, "do_orm_execute", _apply_document_policy)
        setattr(session_class, _INSTALLED, True)


def _apply_document_policy(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    principal = state.session.info.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        principal = None  # fail closed: sees nothing
    elif principal.system:
        return
    show_deleted = bool(state.execution_options.get(SHOW_DELETED, False))
    visible = document_visibility(principal, show_deleted=show_deleted)
    state.statement = state.statement.options(
        with_loader_criteria(Document, visible, include_aliases=True),
        with_loader_criteria(Project, project_visibility(principal), include_aliases=True),
    )
