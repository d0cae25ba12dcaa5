"""Shell sessions in the Markdown docs, and how their shown output is compared.

A fenced block opened with ```` ```bash session=NAME ```` is part of session NAME of its file
(several blocks may continue one session). In it:

* a line that is not a comment is a command; a trailing ``\\`` continues it on the next line,
  and a here-document (``<<EOF`` … ``EOF``) belongs to the command that opens it;
* ``#> `` lines are the output the command before them shows (stdout and stderr together);
* other ``#`` lines and blank lines are prose for the reader.

So a block pastes into bash unchanged. The shown output is compared loosely but honestly:
every shown line must appear in the real output, in order (lines may be left out, and ``...``
says so), ids, timestamps and tokens match any value of their kind, and a step that shows
``ERROR:`` must fail while every other step must succeed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```bash session=([A-Za-z0-9_.-]+)\s*$")
OUTPUT = "#>"
_HEREDOC = re.compile(r"(?<!<)<<-?\s*['\"]?(\w+)['\"]?")
# Values that differ between runs, as they appear in grpcurl's JSON and in shown output.
_VARIABLE = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "[0-9a-f-]{36}"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), r"\d{4}-\d\d-\d\dT[0-9:.]+Z"),
    (re.compile(r"eyJ[A-Za-z0-9_.-]+"), "eyJ[A-Za-z0-9_.-]+"),  # a JWT
    (re.compile(r'(?<=_token": ")[A-Za-z0-9_-]{16,}'), "[A-Za-z0-9_-]+"),  # a page token
    (re.compile(r'(?<="request_id":")[0-9a-f]{32}'), "[0-9a-f]{32}"),
]


@dataclass
class Step:
    command: str
    line: int  # where it starts in the Markdown file (1-based)
    shown: list[str] = field(default_factory=list)

    @property
    def must_fail(self) -> bool:
        return any(line.strip().startswith("ERROR:") for line in self.shown)


@dataclass
class Session:
    path: Path
    name: str
    steps: list[Step] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.name}"


def _blocks(text: str) -> Iterator[tuple[str, int, list[str]]]:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        i += 1
        if not match:
            continue
        start, body = i, []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        yield match.group(1), start + 1, body


def parse(path: Path, text: str) -> list[Session]:
    """The sessions of one Markdown file, in order of first appearance."""
    sessions: dict[str, Session] = {}
    for name, first_line, body in _blocks(text):
        session = sessions.setdefault(name, Session(path, name))
        pending: Step | None = None
        until: str | None = None  # the word that ends a here-document
        depth = 0  # parentheses still open: `ID=$(cmd <<EOF` goes on after the document
        for offset, line in enumerate(body):
            if pending is not None:  # a continued command or its here-document
                pending.command += "\n" + line
                if until is not None:
                    until = None if line.strip() == until else until
                else:
                    depth += line.count("(") - line.count(")")
                    if heredoc := _HEREDOC.search(line):
                        until = heredoc.group(1)
                if until is None and depth <= 0 and not line.endswith("\\"):
                    pending = None
                continue
            stripped = line.strip()
            if stripped.startswith(OUTPUT):
                assert session.steps, f"{path}:{first_line + offset}: output before any command"
                session.steps[-1].shown.append(stripped[len(OUTPUT) :].removeprefix(" "))
            elif stripped and not stripped.startswith("#"):
                session.steps.append(Step(line, first_line + offset))
                heredoc = _HEREDOC.search(line)
                until = heredoc.group(1) if heredoc else None
                depth = line.count("(") - line.count(")")
                continued = line.endswith("\\") or until is not None or depth > 0
                pending = session.steps[-1] if continued else None
    return list(sessions.values())


def collect(paths: Iterable[Path]) -> list[Session]:
    return [s for path in paths for s in parse(path, path.read_text(encoding="utf-8"))]


def _pattern(shown: str) -> re.Pattern[str]:
    parts: list[tuple[int, int, str]] = []
    for regex, replacement in _VARIABLE:
        parts += [(m.start(), m.end(), replacement) for m in regex.finditer(shown)]
    parts.sort()
    out, at = [], 0
    for start, end, replacement in parts:
        if start < at:
            continue
        out += [re.escape(shown[at:start]), replacement]
        at = end
    out.append(re.escape(shown[at:]))
    return re.compile("".join(out).replace(re.escape("…"), ".*"))


def missing(shown: list[str], actual: str) -> list[str]:
    """The shown lines that the actual output does not have (in order); [] when it all is."""
    lines = [line.strip() for line in actual.splitlines()]
    at, absent = 0, []
    for expected in (line.strip() for line in shown):
        if expected in ("", "...", "…"):
            continue
        pattern = _pattern(expected)
        for index in range(at, len(lines)):
            if pattern.fullmatch(lines[index]):
                at = index + 1
                break
        else:
            absent.append(expected)
    return absent
