"""audit_entries: sealed after COMMIT, in batches, by audit_seal_pending (not inside COMMIT)

0007_audit sealed each entry inside its writer's COMMIT (a deferred constraint trigger under
the chain's advisory lock), so the lock was held through the commit record's WAL flush and
every audited write committed alone (no group commit). Here the trigger goes: a write still
inserts its entry in its own transaction, unsealed (a negative placeholder id, its body, no
hashes), and commits without touching the chain. `audit_seal_pending(max_entries, wait)` seals
committed entries afterwards: under the same transaction-scoped advisory lock (waited for, or
only tried: then it returns NULL at once when another sealer holds it), it reads the head and
gives up to ``max_entries`` pending entries, in placeholder order (the writers' transaction
ids), the next ids (dense), prev_hash and hash = SHA-256(prev_hash || int8send(id) || body) —
the same definition as before. docgate runs it in the background after its writes
(docgate.db.sealer); every reader of the chain runs it first.

The append-only trigger now lets through only that transition: an unsealed row becoming sealed
with its content unchanged, body cleared and the hash its body gives; everything else (any
UPDATE of a sealed row, any other UPDATE of an unsealed one, DELETE, TRUNCATE) is refused.

Revision ID: 0009_audit_sealer
Revises: 0008_principal_notify
Create Date: 2026-12-01 14:10:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_audit_sealer"
down_revision: str | None = "0008_principal_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSE = """
CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.id < 0 AND OLD.hash IS NULL AND NEW.id > 0
        AND NEW.body IS NULL AND NEW.prev_hash IS NOT NULL
        AND NEW.hash = sha256(NEW.prev_hash || int8send(NEW.id) || OLD.body)
        AND (NEW.time, NEW.actor_id, NEW.request_id, NEW.method, NEW.action, NEW.resource,
             NEW.changes)
            IS NOT DISTINCT FROM
            (OLD.time, OLD.actor_id, OLD.request_id, OLD.method, OLD.action, OLD.resource,
             OLD.changes)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

# VOLATILE: each statement takes a fresh snapshot, so the head and the pending entries are read
# after the lock is held (and only committed entries are seen: READ COMMITTED).
_SEAL_PENDING = """
CREATE FUNCTION audit_seal_pending(max_entries integer, wait boolean) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head_id bigint;
    head_hash bytea;
    sealed integer := 0;
    pending record;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(7237112421875541108);  -- docgate.db.audit.CHAIN_LOCK
    ELSIF NOT pg_try_advisory_xact_lock(7237112421875541108) THEN
        RETURN NULL;  -- another sealer holds the chain: it seals these too
    END IF;
    SELECT id, hash INTO head_id, head_hash FROM audit_entries
        WHERE id > 0 ORDER BY id DESC LIMIT 1;
    head_id := coalesce(head_id, 0);
    head_hash := coalesce(head_hash, decode(repeat('00', 32), 'hex'));
    FOR pending IN
        SELECT id, body FROM audit_entries WHERE id < 0 ORDER BY id DESC LIMIT max_entries
    LOOP
        head_id := head_id + 1;
        UPDATE audit_entries
            SET id = head_id, prev_hash = head_hash, body = NULL,
                hash = sha256(head_hash || int8send(head_id) || pending.body)
            WHERE id = pending.id
            RETURNING hash INTO head_hash;
        sealed := sealed + 1;
    END LOOP;
    RETURN sealed;
END
$$
"""

# 0007_audit's, restored by downgrade.
_OLD_REFUSE = """
CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.id < 0 AND OLD.hash IS NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

_OLD_SEAL = """
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
    op.execute("DROP TRIGGER audit_entries_seal ON audit_entries")
    op.execute("DROP FUNCTION audit_entries_seal()")
    op.execute(_REFUSE)
    op.execute(_SEAL_PENDING)


def downgrade() -> None:
    # Entries still pending would never be sealed by the restored trigger (it fires on INSERT):
    # seal them first, under the chain lock, as 0009 would have.
    op.execute("SELECT audit_seal_pending(2147483647, true)")
    op.execute("DROP FUNCTION audit_seal_pending(integer, boolean)")
    op.execute(_OLD_REFUSE)
    op.execute(_OLD_SEAL)
    op.execute(
        "CREATE CONSTRAINT TRIGGER audit_entries_seal AFTER INSERT ON audit_entries "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_entries_seal()"
    )
