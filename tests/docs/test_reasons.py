"""Code and docs agree on every ErrorInfo reason.

The reasons the code can answer are collected from the source's syntax tree, not from a list
someone has to remember to update: every string literal given as a ``reason`` (keyword,
positional parameter of a function that takes ``reason``, or a local named ``reason``), and a
domain error class's ``default_reason`` wherever that class is raised without one. Each must
be documented in docs/errors.md, each documented one must be one the code answers, and each
must appear in some test (a test module, or the shown output of a doc session, which
tests/docs/test_docs.py runs).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.docs.sessions import collect

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "src" / "docgate").rglob("*.py"))
_REASON = re.compile(r"^[A-Z][A-Z0-9_]+$")


def _literals(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        is_text = isinstance(child, ast.Constant) and isinstance(child.value, str)
        if is_text and _REASON.match(child.value):  # type: ignore[attr-defined]
            yield child.value  # type: ignore[attr-defined]


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def code_reasons() -> set[str]:
    trees = [ast.parse(path.read_text(), str(path)) for path in SOURCES]
    positions: dict[str, int] = {}  # function name -> index of its `reason` parameter
    defaults: dict[str, str] = {}  # error class -> default_reason
    found_defaults: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [arg.arg for arg in node.args.args]
                if "reason" in names:
                    positions[node.name] = names.index("reason")
                # A `reason` parameter's default is answered by every call that omits it.
                every = [*node.args.args, *node.args.kwonlyargs]
                given = [*node.args.defaults, *node.args.kw_defaults]
                for arg, default in zip(reversed(every), reversed(given), strict=False):
                    if arg.arg == "reason" and default is not None:
                        found_defaults.update(_literals(default))
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.Assign) and any(
                        getattr(t, "id", "") == "default_reason" for t in item.targets
                    ):
                        defaults[node.name] = next(_literals(item.value))
    found: set[str] = set(found_defaults)
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", "") == "reason" for t in node.targets
            ):
                found.update(_literals(node.value))
            if not isinstance(node, ast.Call):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            if "reason" in keywords:
                found.update(_literals(keywords["reason"]))
            name = _name(node.func)
            index = positions.get(name)
            if index is not None and index < len(node.args):  # module functions only
                found.update(_literals(node.args[index]))
            elif name in defaults and "reason" not in keywords:
                found.add(defaults[name])
    return found


def documented_reasons() -> set[str]:
    text = (ROOT / "docs" / "errors.md").read_text()
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, re.MULTILINE))


def _tested_text() -> str:
    tests = [p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_reasons.py"]
    shown = [
        line
        for session in collect([ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
        for step in session.steps
        for line in step.shown
    ]
    return "\n".join([*(p.read_text() for p in tests), *shown])


def test_the_collector_finds_reasons_of_every_kind() -> None:
    reasons = code_reasons()
    # a keyword literal, a conditional in a local, a positional parameter, a class default
    assert {"DOCUMENT_NOT_FOUND", "TOKEN_EXPIRED", "INVALID_TOKEN", "INTERNAL"} <= reasons


def test_every_reason_the_code_answers_is_documented() -> None:
    assert sorted(code_reasons() - documented_reasons()) == []


def test_every_documented_reason_is_one_the_code_answers() -> None:
    assert sorted(documented_reasons() - code_reasons()) == []


def test_every_reason_appears_in_a_test() -> None:
    text = _tested_text()
    untested = [r for r in sorted(documented_reasons()) if not re.search(rf"\b{r}\b", text)]
    assert untested == []
