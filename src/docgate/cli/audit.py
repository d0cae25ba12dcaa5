"""`docgate audit verify` and `docgate audit export`: the trail, read past the API.

Both first seal every entry committed so far (docgate.db.audit.seal_all: the background
sealers may not have reached the newest yet), so they see the whole chain. verify walks the
chain in id order and recomputes every hash (docgate.audit.verify); export
writes entries as JSON Lines, one object per line with the fields the hash covers plus the two
hashes in hex, so a SIEM (or anyone) can re-verify what it was given.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from docgate import audit, runtime
from docgate.bootstrap import build_app
from docgate.config import Settings
from docgate.db.audit import seal_all
from docgate.repositories.audit import walk


class ChainBroken(Exception):
    """An entry whose hashes do not match: the message names it (exit 1)."""


def exported(entry: audit.Entry) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(audit.body(entry))
    return {"id": entry.id, **body, "prev_hash": entry.prev_hash.hex(), "hash": entry.hash.hex()}


async def run(settings: Settings, action: str, from_time: datetime | None) -> None:
    app = build_app(settings, await runtime.migrated_database_url(settings))
    try:
        async with app.engine.connect() as connection:
            await seal_all(connection)  # every committed entry, sealed, before the walk
            if action == "export":
                async for entry in walk(connection, from_time):
                    sys.stdout.write(json.dumps(exported(entry), ensure_ascii=False) + "\n")
                return
            verdict = audit.verify([entry async for entry in walk(connection)])
    finally:
        await app.close()
    if verdict.first_bad is not None:
        bad = verdict.first_bad
        raise ChainBroken(
            f"audit entry {bad.id} ({bad.action.value} {bad.resource}) does not verify: "
            f"{verdict.why}; the {verdict.count} entries before it do"
        )
    print(f"ok: {verdict.count} entries, head {verdict.head.hex()}")
