"""documents: (owner_id, create_time, id) index for owner listings

ListDocuments with owner_id in the default order (create_time desc, id desc) becomes one
backward index range instead of a bitmap scan plus a sort of all the owner's rows. The new
index leads with owner_id, so it replaces ix_documents_owner_id for the foreign key too.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:30:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_documents_owner_id_create_time_id",
        "documents",
        ["owner_id", "create_time", "id"],
        unique=False,
    )
    op.drop_index("ix_documents_owner_id", table_name="documents")


def downgrade() -> None:
    op.create_index("ix_documents_owner_id", "documents", ["owner_id"], unique=False)
    op.drop_index("ix_documents_owner_id_create_time_id", table_name="documents")
