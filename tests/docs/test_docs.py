"""Docs are tests: every ```bash session=NAME``` block in README.md and docs/*.md runs, in
order, in one bash per session, against a real dev-mode server, and must still show what the
doc shows (tests/docs/sessions.py says how blocks are read and compared).

The server is the real entry point, `docgate serve` with DOCGATE_DATABASE_URL unset, exactly
what `make run` starts: embedded PostgreSQL, generated secret, the demo users. It gets a data
dir of its own and a free port; the sessions' `docgate token USER` joins that data dir through
DOCGATE_DATA_DIR, and the one thing rewritten in the commands is the documented address
127.0.0.1:50051, which becomes the test server's. Sessions share the server in file order,
as a reader pasting the docs one after the other would; each leaves behind nothing the next
depends on.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.docs.sessions import Session, Step, collect, missing, parse
from tests.e2e.test_cli import DOCGATE, TIMEOUT, serving_port

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_ADDRESS = "127.0.0.1:50051"
SESSIONS = collect([ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
_RC = re.compile(r"^@@docs-rc (\d+) (\d+)@@$", re.MULTILINE)


@pytest.fixture(scope="module")
async def address(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("docs") / "dg"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGATE_")}
    env.update(DOCGATE_DATA_DIR=str(data_dir), DOCGATE_LISTEN="127.0.0.1:0")
    proc = await asyncio.create_subprocess_exec(
        DOCGATE, "serve", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        port = await serving_port(proc)
        drain = asyncio.create_task(_drain(proc))
        yield f"127.0.0.1:{port}", data_dir
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
        await drain
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _drain(proc: asyncio.subprocess.Process) -> None:
    """Keep reading the server's log so a full pipe never blocks it."""
    assert proc.stderr is not None
    while await proc.stderr.readline():
        pass


def _script(steps: list[Step], address: str) -> str:
    parts = ["set -o pipefail"]
    for index, step in enumerate(steps):
        command = step.command.replace(DOCUMENTED_ADDRESS, address)
        parts.append(f"printf '@@docs-step {index}@@\\n'\n{{ {command}\n}} 2>&1\n"
                     f"printf '\\n@@docs-rc {index} %d@@\\n' $?")  # fmt: skip
    return "\n".join(parts) + "\n"


async def run_session(
    session: Session, address: str, data_dir: Path
) -> list[tuple[Step, int, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCGATE_")}
    env.update(DOCGATE_DATA_DIR=str(data_dir), PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    proc = await asyncio.create_subprocess_exec(
        "bash", "--noprofile", "--norc", "-s", cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(_script(session.steps, address).encode()), 300)
    text = out.decode()
    results = []
    for index, step in enumerate(session.steps):
        head = f"@@docs-step {index}@@\n"
        assert head in text, f"{session.id}: bash stopped before line {step.line}:\n{text[-2000:]}"
        body = text.split(head, 1)[1]
        rc = _RC.search(body)
        assert rc is not None and int(rc.group(1)) == index, text[-2000:]
        results.append((step, int(rc.group(2)), body[: rc.start()]))
    return results


def check(session: Session, results: list[tuple[Step, int, str]]) -> list[str]:
    problems = []
    for step, rc, output in results:
        where = f"{session.path.name}:{step.line}: {step.command.splitlines()[0]}"
        if step.must_fail and rc == 0:
            problems.append(
                f"{where}\n  should fail (the doc shows ERROR) but succeeded:\n{output}"
            )
        elif not step.must_fail and rc != 0:
            problems.append(f"{where}\n  failed with exit code {rc}:\n{output}")
        elif absent := missing(step.shown, output):
            problems.append(f"{where}\n  output lacks {absent}; it was:\n{output}")
    return problems


def test_the_docs_have_sessions() -> None:
    names = {session.id for session in SESSIONS}
    assert {"README.md:first", "api-documents.md:documents", "api-roles-users.md:roles"} <= names
    assert all(session.steps for session in SESSIONS)


@pytest.mark.parametrize("session", SESSIONS, ids=[s.id for s in SESSIONS])
async def test_session_runs_as_documented(session: Session, address: tuple[str, Path]) -> None:
    problems = check(session, await run_session(session, *address))
    assert not problems, "\n\n".join(problems)


DRIFTED = """
```bash session=drift
echo '{"code": "NotFound", "id": "0b6c3a52-83a4-4d43-b1b6-2a3f2b0e1d11"}'
#> {"code": "NotFound", "id": "6f1c7c1e-2b7a-4d4e-9a55-0d7c1f3e8a10"}
echo '{"code": "Aborted"}'
#> {"code": "NotFound"}
false
echo ok \\
  continued
#> ERROR:
```
"""


async def test_a_drifted_doc_fails(tmp_path: Path) -> None:
    """The checker itself: values vary, codes do not; failures and successes are told apart."""
    (session,) = parse(tmp_path / "drift.md", DRIFTED)
    assert [step.command for step in session.steps][3] == "echo ok \\\n  continued"
    problems = check(session, await run_session(session, DOCUMENTED_ADDRESS, tmp_path))
    assert len(problems) == 3, problems
    assert 'lacks [\'{"code": "NotFound"}\']' in problems[0]
    assert "failed with exit code 1" in problems[1]
    assert "should fail" in problems[2]
