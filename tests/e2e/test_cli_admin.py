"""The CLI explains itself: --version, every setting in `serve --help`, the users and roles
commands, one-line errors that name the thing, exit 1 for refusals and 2 for usage errors, and
a downgrade that asks before it drops anything. Through the installed `docgate` entry point."""

from __future__ import annotations

import asyncio
import os
import pty
import re
from importlib.metadata import version

import asyncpg
from sqlalchemy.engine import make_url

from docgate.config import ENV_PREFIX, Settings
from tests.e2e.test_cli import DOCGATE, TIMEOUT, _env, _run
from tests.support import unique


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


async def test_version_and_help_list_every_setting(database_url: str) -> None:
    env = _env(database_url)
    code, out, _ = await _run(env, "--version")
    assert (code, out.strip()) == (0, f"docgate {version('docgate')}")
    code, out, _ = await _run(env, "serve", "--help")
    assert code == 0
    for name, field in Settings.model_fields.items():
        entry = re.search(rf"{ENV_PREFIX}{name.upper()}  \(default: ([^)]*)\)\n\s+(.+)", out)
        assert entry is not None, name
        assert field.description and entry.group(2).strip() == field.description
    assert "DOCGATE_ALEMBIC_INI" in out
    commands = [["users", "list"], ["users", "assign-role"], ["users", "revoke-role"],
                ["users", "deactivate"], ["roles", "list"], ["migrate"], ["token"]]  # fmt: skip
    for command in commands:
        code, out, _ = await _run(env, *command, "--help")
        assert code == 0, command
        assert out.split("\n\n")[1].strip(), f"{command} has no description"


async def test_users_and_roles_commands(database_url: str) -> None:
    env = _env(database_url)
    name, admin = unique(), unique()
    assert (await _run(env, "users", "create", name, "--email", f"{name}@x.io"))[0] == 0
    await _run(env, "users", "create", admin, "--email", f"{admin}@x.io", "--role", "admin")
    code, out, err = await _run(env, "users", "assign-role", name, "paid_user")
    assert code == 0, err
    assert re.fullmatch(rf"{name}\t[0-9a-f-]{{36}}\tactive\tpaid_user\n", out)
    code, out, _ = await _run(env, "users", "list", "--role", "paid_user")
    assert f"{name}\t" in out
    assert f"{admin}\t" not in out
    code, out, err = await _run(env, "users", "revoke-role", name, "paid_user")
    assert (code, out.endswith("\tactive\t-\n")) == (0, True), err
    code, out, err = await _run(env, "users", "deactivate", name)
    assert code == 0, err
    assert "\tinactive\t" in out
    code, out, _ = await _run(env, "users", "list", "--inactive")
    assert f"{name}\t" in out
    assert f"{admin}\t" not in out
    code, out, _ = await _run(env, "roles", "list")
    assert code == 0
    assert re.search(r"^admin\tbuilt-in\t", out, re.MULTILINE)


async def test_refusals_exit_1_and_name_the_thing(database_url: str) -> None:
    env = _env(database_url)
    name = unique()
    await _run(env, "users", "create", name, "--email", f"{name}@x.io")
    code, _, err = await _run(env, "users", "assign-role", name, "editor")
    assert (code, _one_line(err)) == (1, 'docgate: role "editor" not found')
    code, _, err = await _run(env, "users", "deactivate", "nobody_" + name)
    assert (code, _one_line(err)) == (1, f'docgate: user "nobody_{name}" not found')
    code, _, err = await _run(env, "users", "list", "--role", "editor")
    assert (code, _one_line(err)) == (1, 'docgate: role "editor" not found')


async def test_usage_errors_exit_2_without_a_traceback(database_url: str) -> None:
    env = _env(database_url)
    code, _, err = await _run(env, "users", "assign-role", "someone")
    assert code == 2
    assert "Traceback" not in err
    code, _, err = await _run(env, "migrate", "upgrade", "nosuchrev")
    assert code == 2
    assert "nosuchrev" in _one_line(err)
    code, _, err = await _run({**env, "DOCGATE_DATABASE_URL": "not a url"}, "migrate", "current")
    assert code == 2
    assert _one_line(err).startswith("docgate: DOCGATE_DATABASE_URL is not a usable database URL")
    code, _, err = await _run({**env, "DOCGATE_POOL_SIZE": "0"}, "migrate", "current")
    assert code == 2
    assert "DOCGATE_POOL_SIZE" in _one_line(err)
    code, _, err = await _run({**env, "DOCGATE_ALEMBIC_INI": "/nonexistent/alembic.ini"},
                              "migrate", "current")  # fmt: skip
    assert code == 2
    assert "/nonexistent/alembic.ini" in _one_line(err)


async def test_an_unreachable_database_is_one_line(database_url: str) -> None:
    url = make_url(database_url).set(host="127.0.0.1", port=1)
    env = _env(url.render_as_string(hide_password=False))
    code, _, err = await _run(env, "users", "list")
    assert code == 1
    assert _one_line(err).startswith("docgate: cannot reach the database at 127.0.0.1:1")


async def test_downgrade_that_drops_tables_asks_first(scratch_database_url: str) -> None:
    env = _env(scratch_database_url)
    code, head, err = await _run(env, "migrate", "upgrade")
    assert code == 0, err
    name = unique()
    await _run(env, "users", "create", name, "--email", f"{name}@x.io")
    code, out, err = await _run(env, "migrate", "downgrade", "base")  # no terminal, no --yes
    assert code == 1
    line = _one_line(err)
    assert "will drop tables" in line
    assert "users (1 row)" in line
    assert "--yes" in line
    assert (await _run(env, "migrate", "current"))[1] == head  # nothing was dropped
    conn = await asyncpg.connect(make_url(scratch_database_url).render_as_string(False))
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") == 1
    finally:
        await conn.close()
    # 0002 -> 0001 only swaps an index: nothing is dropped, so nothing is asked.
    assert (await _run(env, "migrate", "downgrade", "0002", "--yes"))[0] == 0
    code, out, err = await _run(env, "migrate", "downgrade", "0001")
    assert (code, out.strip()) == (0, "0001"), err


async def _downgrade_on_a_terminal(env: dict[str, str], answer: str) -> tuple[int, str]:
    """`migrate downgrade base` with a pseudo-terminal as stdin, answering ``answer``."""
    master, slave = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            DOCGATE, "migrate", "downgrade", "base", env=env, stdin=slave,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        os.write(master, answer.encode() + b"\n")
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


async def test_on_a_terminal_the_downgrade_asks(scratch_database_url: str) -> None:
    env = _env(scratch_database_url)
    assert (await _run(env, "migrate", "upgrade"))[0] == 0
    code, output = await _downgrade_on_a_terminal(env, "no")
    assert code == 1
    assert "will drop tables" in output
    assert "Type 'yes' to go on" in output
    code, output = await _downgrade_on_a_terminal(env, "yes")
    assert code == 0, output
    assert (await _run(env, "migrate", "current"))[1].strip() == "base (no docgate schema)"
