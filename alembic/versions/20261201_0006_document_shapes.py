"""documents: an index for every ListDocuments / SearchDocuments arm and order

The policy's OR (the caller's own documents, or shared ones) now runs as one UNION ALL branch
per arm (docgate.policy.document_arms), each an index range in the page order:

* the caller's own documents: (owner_id, <order column>, id) for every order (create_time
  already had one since 0002);
* shared documents: partial indexes over the documents that are public and not deleted, one
  per order column, so the shared arm reads only rows it may return whatever share of the
  table is public.

Revision ID: 0006_document_shapes
Revises: 0005
Create Date: 2026-12-01 11:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006_document_shapes"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SHARED = "NOT is_deleted AND is_public"
_OWNER = {
    "ix_documents_owner_id_update_time_id": ["owner_id", "update_time", "id"],
    "ix_documents_owner_id_title_id": ["owner_id", "title", "id"],
}
_PARTIAL = {
    "ix_documents_shared_create_time_id": ["create_time", "id"],
    "ix_documents_shared_update_time_id": ["update_time", "id"],
    "ix_documents_shared_title_id": ["title", "id"],
}


def upgrade() -> None:
    for name, columns in _OWNER.items():
        op.create_index(name, "documents", columns)
    for name, columns in _PARTIAL.items():
        op.create_index(name, "documents", columns, postgresql_where=sa.text(_SHARED))


def downgrade() -> None:
    for name in (*_PARTIAL, *_OWNER):
        op.drop_index(name, table_name="documents")
