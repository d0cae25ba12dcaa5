"""audit_entries: the tamper-evident audit trail (docgate.audit)

One row per committed change (and per admin bypass read), written in the change's own
transaction. `audit_append` assigns ids (dense), prev_hash and hash under a transaction-scoped
advisory lock: one chain per deployment, appended in one statement, so the lock is held from
that statement to COMMIT and for no client round trip in between. A trigger refuses UPDATE,
DELETE and TRUNCATE, so the trail cannot be edited through the application's role without first
disabling the trigger (which takes the table's owner) — and even then `docgate audit verify`
finds the edit.

Revision ID: 0007_audit
Revises: 0005
Create Date: 2026-12-01 11:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0007_audit"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIONS = (
    "ROLE_CREATED", "ROLE_UPDATED", "ROLE_DELETED", "ROLE_ASSIGNED", "ROLE_REVOKED",
    "CONFIGURATION_CREATED", "CONFIGURATION_DELETED", "GRANT_CREATED", "GRANT_REVOKED",
    "USER_CREATED", "USER_UPDATED", "USER_DEACTIVATED", "USER_DELETED",
    "DOCUMENT_CREATED", "DOCUMENT_UPDATED", "DOCUMENT_DELETED", "DOCUMENT_UNDELETED",
    "DOCUMENT_PURGED", "PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED",
    "PROJECT_ACTIVATED", "PROJECT_COMPLETED", "PROJECT_ARCHIVED", "PROJECT_RESTORED",
    "FEEDBACK_ADDED", "FEEDBACK_DELETED", "TEMPLATE_CREATED", "TEMPLATE_UPDATED",
    "TEMPLATE_DELETED", "ADMIN_BYPASS_READ",
)  # fmt: skip

_REFUSE = """
CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


# hash = SHA-256(prev_hash || id as int8 big-endian || body), body encoded by docgate.audit.body.
# VOLATILE: each statement takes a fresh snapshot, so the head is read after the lock is held.
_APPEND = """
CREATE FUNCTION audit_append(
    p_time timestamptz, p_actor_id uuid, p_request_id varchar, p_method varchar,
    p_action audit_action, p_resource text, p_changes jsonb, p_body bytea
) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head_id bigint;
    head_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(7237112421875541108);  -- docgate.db.audit.CHAIN_LOCK
    SELECT id, hash INTO head_id, head_hash FROM audit_entries ORDER BY id DESC LIMIT 1;
    head_id := coalesce(head_id, 0) + 1;
    head_hash := coalesce(head_hash, decode(repeat('00', 32), 'hex'));
    INSERT INTO audit_entries
        (id, time, actor_id, request_id, method, action, resource, changes, prev_hash, hash)
    VALUES (head_id, p_time, p_actor_id, p_request_id, p_method, p_action, p_resource,
            p_changes, head_hash, sha256(head_hash || int8send(head_id) || p_body));
    RETURN head_id;
END
$$
"""


def upgrade() -> None:
    action = postgresql.ENUM(*ACTIONS, name="audit_action")
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("method", sa.String(length=200), nullable=False),
        sa.Column("action", action, nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column(
            "changes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "octet_length(prev_hash) = 32", name=op.f("ck_audit_entries_prev_hash_size")
        ),
        sa.CheckConstraint("octet_length(hash) = 32", name=op.f("ck_audit_entries_hash_size")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_entries_hash")),
    )
    op.create_index("ix_audit_entries_actor_id_id", "audit_entries", ["actor_id", "id"])
    op.create_index("ix_audit_entries_resource_id", "audit_entries", ["resource", "id"])
    op.execute(_REFUSE)
    op.execute(_APPEND)
    op.execute(
        "CREATE TRIGGER audit_entries_no_change BEFORE UPDATE OR DELETE ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()"
    )


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION audit_append(timestamptz, uuid, varchar, varchar, audit_action, text, "
        "jsonb, bytea)"
    )
    op.drop_table("audit_entries")  # its triggers go with it
    op.execute("DROP FUNCTION audit_entries_append_only()")
    op.execute("DROP TYPE audit_action")
