"""The `docgate` command's grammar: every command, flag and setting with its help.

`serve --help` lists the settings straight from config.Settings (variable, default,
description), so the help cannot drift from what the server reads.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from docgate.config import ENV_PREFIX, Settings
from docgate.errors import DocgateError
from docgate.validation import email, role_name, username

if TYPE_CHECKING:  # generic in the stubs only
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Commands = argparse._SubParsersAction


def _command(
    commands: Commands, name: str, text: str, **options: object
) -> argparse.ArgumentParser:
    """A subcommand whose one-line help is also the description its own --help shows."""
    options.setdefault("description", text[0].upper() + text[1:] + ".")
    return commands.add_parser(name, help=text, **options)  # type: ignore[arg-type]


def settings_help() -> str:
    """One entry per setting: environment variable, default, description."""
    lines = ["settings (environment variables):"]
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else str(field.default)
        default = default.lower() if isinstance(field.default, bool) else default
        lines.append(f"  {ENV_PREFIX}{name.upper()}  (default: {default})")
        lines.append(f"      {field.description}")
    lines.append(f"  {ENV_PREFIX}ALEMBIC_INI  (default: alembic.ini of the source tree)")
    lines.append("      where the migrations live (read by serve and migrate)")
    return "\n".join(lines)


def package_version() -> str:
    try:
        return version("docgate")
    except PackageNotFoundError:  # running from a tree that was never installed
        return "unknown"


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse type from a docgate validator: a bad value is a usage error (exit 2)."""

    def parse(value: str) -> str:
        try:
            return check(value)
        except DocgateError as error:
            raise argparse.ArgumentTypeError(error.message) from error

    return parse


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return number


def _workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return _positive(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number or auto") from None


def _users(sub: Commands) -> None:
    users = sub.add_parser("users", help="list and manage users", description="Manage users.")
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = _command(actions, "create", "create a user; prints its id")
    create.add_argument("username", type=_checked(username), help="[a-z][a-z0-9_.-]{1,63}")
    create.add_argument("--email", required=True, type=_checked(email), help="e-mail address")
    create.add_argument(
        "--role", action="append", default=[], type=_checked(role_name),
        help="a role to hold (repeat for more)",
    )  # fmt: skip
    listing = _command(actions, "list", "list users with their roles (tab-separated)")
    listing.add_argument("--role", type=_checked(role_name), help="only holders of this role")
    listing.add_argument(
        "--inactive", action="store_true", help="only deactivated users (default: all users)"
    )
    for action, what in (
        ("assign-role", "give USER the role"),
        ("revoke-role", "take the role from USER"),
    ):
        parser = _command(actions, action, f"{what} (idempotent)")
        parser.add_argument("user", help="user id or username")
        parser.add_argument("role", type=_checked(role_name), help="role name")
    deactivate = _command(
        actions, "deactivate", "deactivate a user: their tokens stop working on their next call"
    )
    deactivate.add_argument("user", help="user id or username")


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _audit(sub: Commands) -> None:
    trail = sub.add_parser(
        "audit", help="verify or export the audit trail", description="Read the audit trail."
    )
    actions = trail.add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(
        actions, "verify",
        "walk the hash chain: print the count and the head hash, or name the first entry "
        "that does not verify and exit 1",
    )  # fmt: skip
    export = _command(actions, "export", "write the entries as JSON Lines on stdout")
    export.add_argument(
        "--since", type=_time, default=None,
        help="only entries at or after this ISO 8601 time (UTC without an offset)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docgate",
        description="docgate: a role-aware document store served over gRPC.",
        epilog="Every command reads the DOCGATE_* settings; `docgate serve --help` lists them.",
    )
    parser.add_argument("--version", action="version", version=f"docgate {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="migrate to head and serve gRPC until SIGTERM/SIGINT",
        description="Migrate the database to head and serve gRPC until SIGTERM/SIGINT. "
        "With DOCGATE_DATABASE_URL unset: dev mode (embedded PostgreSQL, demo users, tokens "
        "printed).",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--workers", type=_workers, default=None, metavar="N",
        help="worker processes sharing the port, or auto (one per CPU); "
        "default: DOCGATE_WORKERS (docs/scaling.md)",
    )  # fmt: skip
    migrate = _command(sub, "migrate", "run database migrations (Alembic)")
    migrate.add_argument(
        "action",
        choices=["upgrade", "downgrade", "current"],
        help="upgrade to REVISION, downgrade to REVISION (asks before dropping data), or "
        "print the current revision",
    )
    migrate.add_argument(
        "revision", nargs="?", help="target revision (default: head for upgrade, -1 for downgrade)"
    )
    migrate.add_argument(
        "--yes", action="store_true", help="downgrade: drop tables or columns without asking"
    )
    _users(sub)
    _audit(sub)
    roles = sub.add_parser("roles", help="list roles", description="Inspect roles.")
    roles_actions = roles.add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(roles_actions, "list", "list every role with its description (tab-separated)")
    token = _command(sub, "token", "print a signed token for a user (id or username)")
    token.add_argument("user", help="user id or username")
    token.add_argument(
        "--ttl", type=_positive, default=None,
        help="lifetime in seconds (default: DOCGATE_TOKEN_TTL_SECONDS)",
    )  # fmt: skip
    return parser
