"""documents, projects: request_hash for request_id replays

A create that carries a request_id (AIP-155) answers a retry with the resource it created. To
tell a retry from a different request that reuses the id, each such row keeps a digest of the
request that created it: equal digest → the same request, a different one → INVALID_ARGUMENT
(REQUEST_ID_REUSED). Rows from before this revision have none and are compared as before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("request_hash", sa.LargeBinary(), nullable=True))
    op.add_column("projects", sa.Column("request_hash", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("projects", "request_hash")
    op.drop_column("documents", "request_hash")
