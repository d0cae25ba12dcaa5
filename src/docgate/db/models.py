"""Typed ORM models. Alembic migrations (not create_all) own the schema; `alembic check` in
`make test` proves the two agree."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from docgate.audit import Action
from docgate.policy import ProjectState

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()
    )


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = _uuid_pk()
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    hashed_password: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    create_time: Mapped[datetime] = _now()
    update_time: Mapped[datetime] = _now()

    roles: Mapped[list[Role]] = relationship(
        secondary="user_roles", lazy="raise", order_by="Role.name", viewonly=True
    )


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(50), unique=True)
    description: Mapped[str] = mapped_column(Text, server_default="")
    is_builtin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    create_time: Mapped[datetime] = _now()


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    assigned_at: Mapped[datetime] = _now()


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("owner_id", "request_id", name="uq_documents_owner_id_request_id"),
        Index("ix_documents_create_time_id", "create_time", "id"),
        # ListDocuments owner_id=… in the default order is one index range (revision 0002); it
        # also serves the foreign key's lookups, so there is no separate owner_id index.
        Index("ix_documents_owner_id_create_time_id", "owner_id", "create_time", "id"),
        Index("ix_documents_update_time_id", "update_time", "id"),
        Index("ix_documents_title_id", "title", "id"),
        Index("ix_documents_search", "search", postgresql_using="gin"),
        # ListDocuments project_id=… in the default order, and SET NULL when a project goes;
        # partial, since most documents belong to no project.
        Index(
            "ix_documents_project_id_create_time_id",
            "project_id",
            "create_time",
            "id",
            postgresql_where=text("project_id IS NOT NULL"),
        ),
        # One index per policy arm and order (revision 0006_document_shapes): the caller's own
        # documents by (owner_id, order column, id), shared ones by partial indexes over the
        # public, not deleted documents.
        Index("ix_documents_owner_id_update_time_id", "owner_id", "update_time", "id"),
        Index("ix_documents_owner_id_title_id", "owner_id", "title", "id"),
        *(
            Index(
                f"ix_documents_shared_{column}_id",
                column,
                "id",
                postgresql_where=text("NOT is_deleted AND is_public"),
            )
            for column in ("create_time", "update_time", "title")
        ),
        CheckConstraint("char_length(title) between 1 and 255", name="title_length"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    title: Mapped[str] = mapped_column(String(255))
    content: Mapped[str] = mapped_column(Text, server_default="")
    # RESTRICT: deleting a user who still owns documents is a decision (DeleteUser force).
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    is_deleted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_public: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    requires_paid_access: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    create_time: Mapped[datetime] = _now()
    update_time: Mapped[datetime] = _now()
    delete_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped on every change; the etag is derived from it.
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # AIP-155 idempotency key, unique per owner.
    request_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    request_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A project never widens who may see the document; deleting the project detaches it.
    project_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL")
    )
    search: Mapped[str] = mapped_column(
        TSVECTOR,
        # The title and the first 100,000 characters of content (revision 0005): a tsvector
        # holds at most 1 MiB, and this bound keeps every accepted content storable.
        Computed(
            "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('simple', left(coalesce(content, ''), 100000)), 'B')",
            persisted=True,
        ),
        deferred=True,
    )


class Configuration(Base):
    __tablename__ = "configurations"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, server_default="")
    create_time: Mapped[datetime] = _now()


class RoleConfiguration(Base):
    """Association object: a configuration granted to a role."""

    __tablename__ = "role_configurations"
    __table_args__ = (CheckConstraint("access_level >= 1", name="access_level_positive"),)

    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    configuration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("configurations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    access_level: Mapped[int] = mapped_column(Integer)
    granted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    granted_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# One PostgreSQL enum type for both state columns; values, not member names, are stored.
PROJECT_STATE = Enum(
    ProjectState, name="project_state", values_callable=lambda cls: [m.value for m in cls]
)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        UniqueConstraint("owner_id", "request_id", name="uq_projects_owner_id_request_id"),
        # One index per ListProjects shape (filter + order, ties by id); owner_id's also serves
        # the foreign key.
        Index("ix_projects_create_time_id", "create_time", "id"),
        Index("ix_projects_state_create_time_id", "state", "create_time", "id"),
        Index("ix_projects_owner_id_create_time_id", "owner_id", "create_time", "id"),
        Index("ix_projects_name_id", "name", "id"),
        CheckConstraint("char_length(name) between 1 and 255", name="name_length"),
        CheckConstraint("name = btrim(name)", name="name_trimmed"),
        CheckConstraint("char_length(description) <= 10000", name="description_length"),
        # archived_from is set exactly while the project is archived, and never to archived.
        CheckConstraint(
            "(state = 'archived') = (archived_from IS NOT NULL)", name="archived_from_iff_archived"
        ),
        CheckConstraint("archived_from <> 'archived'", name="archived_from_not_archived"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, server_default="")
    # CASCADE as in the seed schema: DeleteUser removes the user's projects (and so their
    # feedback) instead of failing on them.
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    state: Mapped[ProjectState] = mapped_column(
        PROJECT_STATE, server_default=ProjectState.DRAFT.value
    )
    # The state ArchiveProject left, which RestoreProject returns to.
    archived_from: Mapped[ProjectState | None] = mapped_column(PROJECT_STATE)
    create_time: Mapped[datetime] = _now()
    update_time: Mapped[datetime] = _now()
    # Bumped on every change of the project's own columns; the etag is derived from it.
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # AIP-155 idempotency key, unique per owner, and the digest of the request that used it.
    request_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    request_hash: Mapped[bytes | None] = mapped_column(LargeBinary)


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        # ListFeedback (newest first) and the per-page count/average; also the foreign key's.
        Index("ix_feedback_project_id_create_time_id", "project_id", "create_time", "id"),
        CheckConstraint("char_length(content) between 1 and 10000", name="content_length"),
        # NULL passes (a comment without a score); NaN and infinities fail (NaN sorts above
        # every number in PostgreSQL).
        CheckConstraint("score between 1 and 5", name="score_range"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    content: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Double)
    create_time: Mapped[datetime] = _now()


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (
        CheckConstraint("name ~ '^[a-z][a-z0-9-]{1,62}$'", name="name_slug"),
        CheckConstraint("char_length(title) between 1 and 255", name="title_length"),
        CheckConstraint("char_length(description) <= 10000", name="description_length"),
        CheckConstraint("octet_length(body) <= 1048576", name="body_size"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(63), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, server_default="")
    body: Mapped[str] = mapped_column(Text, server_default="")
    create_time: Mapped[datetime] = _now()
    update_time: Mapped[datetime] = _now()
    # Bumped on every change; the etag is derived from it.
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))


class AuditEntry(Base):
    """One entry of the audit trail (docgate.audit): append-only, a trigger refuses UPDATE,
    DELETE and TRUNCATE, except the seal of an unsealed entry (migrations 0007_audit,
    0009_audit_sealer). No foreign keys: an entry outlives the user and the resource it names."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        CheckConstraint(
            "CASE WHEN id > 0 THEN octet_length(prev_hash) = 32 AND octet_length(hash) = 32 "
            "AND body IS NULL ELSE prev_hash IS NULL AND hash IS NULL AND body IS NOT NULL END",
            name="sealed",
        ),
        Index("ix_audit_entries_actor_id_id", "actor_id", "id"),
        Index("ix_audit_entries_resource_id", "resource", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    request_id: Mapped[str | None] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(200))
    action: Mapped[Action] = mapped_column(
        Enum(Action, name="audit_action", values_callable=lambda e: [m.value for m in e])
    )
    resource: Mapped[str] = mapped_column(Text)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # NULL only while unsealed (a negative placeholder id): from the INSERT until a sealer
    # (docgate.db.sealer, or a reader of the chain) seals it after its COMMIT.
    prev_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    hash: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)
    # docgate.audit.body, for the seal to hash (audit_seal_pending); NULL once sealed.
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
