"""principals: NOTIFY docgate_principals on every change to users, user_roles and roles

Each docgate process keeps the callers it has authenticated (user → active, roles) in memory
(docgate.repositories.principal_cache) and must forget one as soon as it changes, whoever
changed it: another docgate process, the CLI, or an operator in psql. These triggers send the
changed user's id (users: UPDATE/DELETE; user_roles: INSERT/UPDATE/DELETE) or '*' (any change
to roles, and TRUNCATE of any of the three) on channel ``docgate_principals``. PostgreSQL
delivers a notification when the transaction commits, and only then, to every session
listening at that moment; identical ones in one transaction are sent once.

Revision ID: 0008_principal_notify
Revises: 0007_audit
Create Date: 2026-12-01 11:40:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_principal_notify"
down_revision: str | None = "0007_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "docgate_principals"

_FUNCTION = f"""
CREATE FUNCTION docgate_principal_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('{CHANNEL}', '*');
    ELSIF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('{CHANNEL}', OLD.id::text);
    ELSE
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('{CHANNEL}', OLD.user_id::text);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('{CHANNEL}', NEW.user_id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""

_TRIGGERS = (
    ("users_principal_changed", "users", "AFTER UPDATE OR DELETE", "ROW"),
    ("user_roles_principal_changed", "user_roles", "AFTER INSERT OR UPDATE OR DELETE", "ROW"),
    ("roles_principal_changed", "roles", "AFTER UPDATE OR DELETE", "STATEMENT"),
    ("users_principals_truncated", "users", "AFTER TRUNCATE", "STATEMENT"),
    ("user_roles_principals_truncated", "user_roles", "AFTER TRUNCATE", "STATEMENT"),
    ("roles_principals_truncated", "roles", "AFTER TRUNCATE", "STATEMENT"),
)


def upgrade() -> None:
    op.execute(_FUNCTION)
    for name, table, when, level in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} {when} ON {table} "
            f"FOR EACH {level} EXECUTE FUNCTION docgate_principal_changed()"
        )


def downgrade() -> None:
    for name, table, _, _ in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION docgate_principal_changed()")
