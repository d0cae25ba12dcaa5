"""documents.search: index the title and the first 100,000 characters of content

A tsvector holds at most 1 MiB. Content within docgate's 1 MiB limit but made of many distinct
words passed that, and CreateDocument/UpdateDocument failed inside PostgreSQL. The vector now
covers the title and the first SEARCH_PREFIX characters of content: even at 4 bytes a
character and one distinct word per two characters, that stays well below the limit (about
0.6 MiB), so every content the API accepts is stored. What search promises follows: a word
is found when it is in the title or in the first 100,000 characters of content (PostgreSQL
already counted positions only up to 16,383, so phrases far into a long text were never
reliable).

The generated column is dropped and added again (PostgreSQL < 17 cannot change a generated
column's expression), which rebuilds it and its GIN index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:15:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_PREFIX = 100_000
_TITLE = "setweight(to_tsvector('simple', coalesce(title, '')), 'A')"
_WHOLE = f"{_TITLE} || setweight(to_tsvector('simple', coalesce(content, '')), 'B')"
_PREFIX = (
    f"{_TITLE} || "
    f"setweight(to_tsvector('simple', left(coalesce(content, ''), {SEARCH_PREFIX})), 'B')"
)


def _search(expression: str) -> None:
    op.drop_index("ix_documents_search", table_name="documents", postgresql_using="gin")
    op.drop_column("documents", "search")
    op.add_column(
        "documents",
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(expression, persisted=True),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_documents_search", "documents", ["search"], unique=False, postgresql_using="gin"
    )


def upgrade() -> None:
    _search(_PREFIX)


def downgrade() -> None:
    _search(_WHOLE)
