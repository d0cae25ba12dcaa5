"""The safety net from the seed design: every ORM statement run through a docgate session sees
only the documents the current caller may see.

The `do_orm_execute` listener adds `with_loader_criteria(Document, policy...)` to ORM SELECT,
UPDATE and DELETE statements (the option propagates to relationship and column loads of the
same statement, so those are skipped). The predicate comes from docgate.policy; the caller comes
from the principal ContextVar. Admins may pass the execution option ``show_deleted=True`` to
include soft-deleted rows; for anyone else that option raises PermissionDenied.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from docgate.auth.principal import current_principal
from docgate.db.models import Document
from docgate.policy import document_visibility

SHOW_DELETED = "show_deleted"


class PolicySession(Session):
    """The sync session class behind docgate's AsyncSessions; carries the listener."""


@event.listens_for(PolicySession, "do_orm_execute")
def _apply_document_policy(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    principal = current_principal()
    if principal is not None and principal.system:
        return
    show_deleted = bool(state.execution_options.get(SHOW_DELETED, False))
    visible = document_visibility(principal, show_deleted=show_deleted)
    state.statement = state.statement.options(
        with_loader_criteria(Document, visible, include_aliases=True)
    )
