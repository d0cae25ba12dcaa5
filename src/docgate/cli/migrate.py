"""`docgate migrate`: upgrade, current, and a downgrade that asks before it drops anything.

A downgrade is first run in a transaction that is rolled back (docgate.db.migrations.
plan_downgrade), so the question names exactly the tables (with their row counts) and columns
that would go. Without --yes it asks on a terminal and refuses elsewhere: a script that did not
say --yes did not mean to drop data.
"""

from __future__ import annotations

import sys

from docgate import runtime
from docgate.config import Settings
from docgate.db import migrations
from docgate.db.migrations import DowngradePlan


class Declined(Exception):
    """The operator did not confirm a destructive command (exit 1)."""


def _shown(revision: str | None) -> str:
    return revision or "base (no docgate schema)"


def describe(plan: DowngradePlan) -> str:
    parts = [f"downgrade from {_shown(plan.current)} to {_shown(plan.target)} will drop"]
    if plan.dropped_tables:
        tables = ", ".join(
            f"{name} ({rows} row{'' if rows == 1 else 's'})"
            for name, rows in plan.dropped_tables.items()
        )
        parts.append(f"tables {tables}")
    if plan.dropped_columns:
        parts.append(
            ("and " if plan.dropped_tables else "") + "columns " + ", ".join(plan.dropped_columns)
        )
    return " ".join(parts)


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = input(f"{question}. Type 'yes' to go on: ")
    return answer.strip().lower() == "yes"


async def run(settings: Settings, action: str, revision: str | None, yes: bool) -> None:
    url = await runtime.database_url(settings)
    if action == "upgrade":
        print(_shown(await migrations.upgrade(url, revision or "head")))
    elif action == "current":
        print(_shown(await migrations.current(url)))
    else:
        target = revision or "-1"
        plan = await migrations.plan_downgrade(url, target)
        if plan.loses_data and not yes:
            if not _confirmed(describe(plan)):
                raise Declined(f"{describe(plan)}; pass --yes to do it")
        elif plan.loses_data:
            print(f"docgate: {describe(plan)}", file=sys.stderr)
        print(_shown(await migrations.downgrade(url, target)))
