"""The administrative commands: users and roles, as the system (no token), one transaction
each, through the same repositories the RPCs use (so the same rules hold: the last active
admin cannot be deactivated or lose admin, unknown roles are NOT_FOUND)."""

from __future__ import annotations

import argparse
import uuid
from contextlib import nullcontext

from docgate import audit, calls, runtime
from docgate.bootstrap import App, build_app
from docgate.config import Settings
from docgate.principal import SYSTEM
from docgate.repositories.memberships import MembershipRepository
from docgate.repositories.roles import RoleRepository
from docgate.repositories.users import UserRepository
from docgate.tokens import TokenMinter
from docgate.v1 import users_pb2

_PAGE = 500


def _user_line(user: users_pb2.User) -> str:
    state = "active" if user.is_active else "inactive"
    return f"{user.username}\t{user.id}\t{state}\t{','.join(user.roles) or '-'}"


async def run(settings: Settings, args: argparse.Namespace) -> None:
    """Run ``docgate users …``, ``roles …`` or ``token``; print the result on stdout."""
    app = build_app(settings, await runtime.migrated_database_url(settings))
    command = (args.command, getattr(args, "action", None))
    name = f"docgate {command[0]} {command[1]}"
    audited = calls.calling(name, uuid.uuid4().hex) if name in audit.WRITES else nullcontext()
    try:
        with audited:
            await _run(app, settings, args, command)
    finally:
        await app.close()


async def _run(
    app: App, settings: Settings, args: argparse.Namespace, command: tuple[str, str | None]
) -> None:
    async with app.uow.transaction(SYSTEM) as session:
        users = UserRepository(session)
        if command == ("users", "create"):
            print((await users.create(args.username, args.email, args.role)).id)
        elif command == ("users", "list"):
            for line in await _list_users(users, args.role, args.inactive):
                print(line)
        elif command in (("users", "assign-role"), ("users", "revoke-role")):
            user_id = await users.find_id(args.user)
            memberships = MembershipRepository(session)
            if args.action == "assign-role":
                await memberships.assign(user_id, args.role)
            else:
                await memberships.revoke(user_id, args.role)
            print(_user_line(await users.get(user_id)))
        elif command == ("users", "deactivate"):
            user_id = await users.find_id(args.user)
            print(_user_line(await users.update(user_id, email=None, is_active=False)))
        elif command == ("roles", "list"):
            for line in await _list_roles(RoleRepository(session)):
                print(line)
        elif args.command == "token":
            user_id = await users.find_id(args.user)
            print(TokenMinter(settings).mint(user_id, args.ttl or settings.token_ttl_seconds))


async def _list_users(users: UserRepository, role: str | None, inactive: bool) -> list[str]:
    lines, token = [], ""
    while True:
        page = await users.list_page(
            _PAGE, token, role=role, without_roles=False, is_active=False if inactive else None
        )
        lines += [_user_line(user) for user in page.users]
        token = page.next_page_token
        if not token:
            return lines


async def _list_roles(roles: RoleRepository) -> list[str]:
    lines, token = [], ""
    while True:
        page = await roles.list_page(_PAGE, token)
        for role in page.roles:
            kind = "built-in" if role.builtin else "custom"
            lines.append(f"{role.name}\t{kind}\t{role.description}")
        token = page.next_page_token
        if not token:
            return lines
