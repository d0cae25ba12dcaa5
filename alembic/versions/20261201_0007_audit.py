"""audit_entries: the tamper-evident audit trail (docgate.audit)

One row per committed change (and per admin bypass read), written in the change's own
transaction, unsealed (a negative placeholder id, no hashes); a deferred constraint trigger
seals it at COMMIT: under a transaction-scoped advisory lock it assigns the next id (dense),
prev_hash and hash, so there is one chain per deployment and the lock is held only inside
COMMIT, for no client round trip. A trigger refuses UPDATE,
DELETE and TRUNCATE, so the trail cannot be edited through the application's role without first
disabling the trigger (which takes the table's owner) — and even then `docgate audit verify`
finds the edit.

Revision ID: 0007_audit
Revises: 0006_document_shapes
Create Date: 2026-12-01 11:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0007_audit"
down_revision: str | None = "0006_document_shapes"
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

# Sealed entries (id > 0) never change. An unsealed one (a negative placeholder id, visible only
# to its own transaction until COMMIT) is sealed once, by audit_entries_seal below.
_REFUSE = """
CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.id < 0 AND OLD.hash IS NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

# At COMMIT (a deferred constraint trigger): take the chain lock, read the head, give the entry
# the next id, prev_hash and hash = SHA-256(prev_hash || id as int8 big-endian || body), where
# body is docgate.audit.body, encoded by docgate when it inserted the entry. The lock is held
# from here to the end of COMMIT: inside the server, no client round trip. VOLATILE: each
# statement takes a fresh snapshot, so the head is read after the lock is held.
_SEAL = """
CREATE FUNCTION audit_entries_seal() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head_id bigint;
    head_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(7237112421875541108);  -- docgate.db.audit.CHAIN_LOCK
    SELECT id, hash INTO head_id, head_hash FROM audit_entries
        WHERE id > 0 ORDER BY id DESC LIMIT 1;
    head_id := coalesce(head_id, 0) + 1;
    head_hash := coalesce(head_hash, decode(repeat('00', 32), 'hex'));
    UPDATE audit_entries
        SET id = head_id, prev_hash = head_hash, body = NULL,
            hash = sha256(head_hash || int8send(head_id) || NEW.body)
        WHERE id = NEW.id;
    RETURN NULL;
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
        sa.Column("prev_hash", sa.LargeBinary(), nullable=True),
        sa.Column("hash", sa.LargeBinary(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint(
            "CASE WHEN id > 0 THEN octet_length(prev_hash) = 32 AND octet_length(hash) = 32 "
            "AND body IS NULL ELSE prev_hash IS NULL AND hash IS NULL AND body IS NOT NULL END",
            name=op.f("ck_audit_entries_sealed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_entries_hash")),
    )
    op.create_index("ix_audit_entries_actor_id_id", "audit_entries", ["actor_id", "id"])
    op.create_index("ix_audit_entries_resource_id", "audit_entries", ["resource", "id"])
    op.execute(_REFUSE)
    op.execute(_SEAL)
    op.execute(
        "CREATE TRIGGER audit_entries_no_change BEFORE UPDATE OR DELETE ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()"
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER audit_entries_seal AFTER INSERT ON audit_entries "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_entries_seal()"
    )


def downgrade() -> None:
    op.drop_table("audit_entries")  # its triggers go with it
    op.execute("DROP FUNCTION audit_entries_seal()")
    op.execute("DROP FUNCTION audit_entries_append_only()")
    op.execute("DROP TYPE audit_action")
