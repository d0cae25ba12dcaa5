"""projects, feedback and templates in the ProjectService shape; documents.project_id

0001 created projects, feedback and templates from the seed design, but nothing ever read or
wrote them, and their shape does not fit ProjectService (projects.status instead of a state
with archived_from/version/request_id, feedback hanging off documents with a mandatory integer
score, templates without title/body/version). They are empty, so this revision drops and
re-creates them instead of altering them column by column; it refuses to run when any of them
holds a row. The enum type project_status goes with them; project_state replaces it.

New shape:

* projects: state and archived_from (enum project_state; archived_from is set exactly while
  the project is archived), version (etag), request_id unique per owner, owner_id → users
  (CASCADE, as before); an index per ListProjects shape.
* feedback: project_id → projects (CASCADE), author_id → users (CASCADE), content, nullable
  double precision score checked 1..5; (project_id, create_time, id) for ListFeedback and the
  per-page aggregates.
* templates: name slug (unique), title, description, body (≤ 1 MiB), update_time, version.
* documents.project_id → projects (SET NULL), with a partial (project_id, create_time, id)
  index for ListDocuments project_id=… in the default order.

Downgrade drops all of that (the new tables' rows and documents.project_id with them) and
re-creates the three tables and project_status exactly as 0001 made them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 08:50:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import context, op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROJECT_STATE = postgresql.ENUM(
    "draft", "active", "completed", "archived", name="project_state", create_type=False
)


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _uuid_pk() -> sa.Column:
    return sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False)


def _refuse_to_drop_rows() -> None:
    if context.is_offline_mode():
        return
    used = op.get_bind().scalar(
        sa.text(
            "SELECT EXISTS (SELECT FROM projects) OR EXISTS (SELECT FROM feedback)"
            " OR EXISTS (SELECT FROM templates)"
        )
    )
    if used:
        raise RuntimeError(
            "revision 0003 re-creates projects, feedback and templates, which hold rows here; "
            "nothing in docgate wrote them, so move those rows out by hand first"
        )


def upgrade() -> None:
    _refuse_to_drop_rows()
    _drop_seed_tables()
    PROJECT_STATE.create(op.get_bind())
    op.create_table(
        "projects",
        _uuid_pk(),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("state", PROJECT_STATE, server_default="draft", nullable=False),
        sa.Column("archived_from", PROJECT_STATE, nullable=True),
        _now("create_time"),
        _now("update_time"),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=True),
        sa.CheckConstraint(
            "char_length(name) between 1 and 255", name=op.f("ck_projects_name_length")
        ),
        sa.CheckConstraint("name = btrim(name)", name=op.f("ck_projects_name_trimmed")),
        sa.CheckConstraint(
            "char_length(description) <= 10000", name=op.f("ck_projects_description_length")
        ),
        sa.CheckConstraint(
            "(state = 'archived') = (archived_from IS NOT NULL)",
            name=op.f("ck_projects_archived_from_iff_archived"),
        ),
        sa.CheckConstraint(
            "archived_from <> 'archived'", name=op.f("ck_projects_archived_from_not_archived")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_projects_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("owner_id", "request_id", name="uq_projects_owner_id_request_id"),
    )
    op.create_index("ix_projects_create_time_id", "projects", ["create_time", "id"])
    op.create_index("ix_projects_state_create_time_id", "projects", ["state", "create_time", "id"])
    op.create_index(
        "ix_projects_owner_id_create_time_id", "projects", ["owner_id", "create_time", "id"]
    )
    op.create_index("ix_projects_name_id", "projects", ["name", "id"])
    op.create_table(
        "feedback",
        _uuid_pk(),
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("author_id", sa.UUID(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("score", sa.Double(), nullable=True),
        _now("create_time"),
        sa.CheckConstraint(
            "char_length(content) between 1 and 10000", name=op.f("ck_feedback_content_length")
        ),
        sa.CheckConstraint("score between 1 and 5", name=op.f("ck_feedback_score_range")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_feedback_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_feedback_author_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(
        "ix_feedback_project_id_create_time_id", "feedback", ["project_id", "create_time", "id"]
    )
    op.create_index(op.f("ix_feedback_author_id"), "feedback", ["author_id"])
    op.create_table(
        "templates",
        _uuid_pk(),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        _now("create_time"),
        _now("update_time"),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("name ~ '^[a-z][a-z0-9-]{1,62}$'", name=op.f("ck_templates_name_slug")),
        sa.CheckConstraint(
            "char_length(title) between 1 and 255", name=op.f("ck_templates_title_length")
        ),
        sa.CheckConstraint(
            "char_length(description) <= 10000", name=op.f("ck_templates_description_length")
        ),
        sa.CheckConstraint("octet_length(body) <= 1048576", name=op.f("ck_templates_body_size")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_templates_name")),
    )
    op.add_column("documents", sa.Column("project_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_documents_project_id_projects"),
        "documents",
        "projects",
        ["project_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_documents_project_id_create_time_id",
        "documents",
        ["project_id", "create_time", "id"],
        postgresql_where=sa.text("project_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_documents_project_id_create_time_id", table_name="documents")
    op.drop_constraint(op.f("fk_documents_project_id_projects"), "documents", type_="foreignkey")
    op.drop_column("documents", "project_id")
    # Indexes and constraints go with their tables.
    op.drop_table("feedback")
    op.drop_table("projects")
    op.drop_table("templates")
    PROJECT_STATE.drop(op.get_bind())
    _create_seed_tables()


def _drop_seed_tables() -> None:
    """0001's feedback, projects and templates, with their indexes and enum type."""
    op.drop_index(op.f("ix_feedback_document_id"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_author_id"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index(op.f("ix_projects_owner_id"), table_name="projects")
    op.drop_table("projects")
    op.drop_table("templates")
    sa.Enum(name="project_status").drop(op.get_bind())


def _create_seed_tables() -> None:
    """0001's feedback, projects and templates, exactly as it created them."""
    op.create_table(
        "templates",
        _uuid_pk(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("content", sa.Text(), server_default="", nullable=False),
        _now("create_time"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_templates_name")),
    )
    op.create_table(
        "projects",
        _uuid_pk(),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("draft", "active", "completed", "archived", name="project_status"),
            server_default="draft",
            nullable=False,
        ),
        _now("create_time"),
        _now("update_time"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_projects_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    op.create_index(op.f("ix_projects_owner_id"), "projects", ["owner_id"], unique=False)
    op.create_table(
        "feedback",
        _uuid_pk(),
        sa.Column("author_id", sa.UUID(), nullable=False),
        sa.Column("document_id", sa.UUID(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        _now("create_time"),
        sa.CheckConstraint("score between 1 and 5", name=op.f("ck_feedback_score_range")),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_feedback_author_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_feedback_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_author_id"), "feedback", ["author_id"], unique=False)
    op.create_index(op.f("ix_feedback_document_id"), "feedback", ["document_id"], unique=False)
