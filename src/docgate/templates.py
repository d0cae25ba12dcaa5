"""Template bodies: ``{{placeholder}}`` markers filled in by literal substitution.

A marker is ``{{``, optional spaces (U+0020 only), a name matching ``[a-z_][a-z0-9_]*``,
optional spaces, ``}}``: ``{{client}}`` and ``{{ client }}`` are the same placeholder. Anything
else is literal text and stays as written: ``{{ Client }}``, ``{{a.b}}``, ``{{}}``, a tab
inside the braces, a lone ``{{``. Markers are found left to right without overlapping, so in
``{{{a}}}`` the marker is ``{{a}}`` and the outer braces are literal.

There is no expression language, no escaping and no recursion: rendering is one pass over the
body, and each value is inserted verbatim, so a value that contains ``{{x}}`` (or a backslash,
or anything else) appears in the result exactly as given and is never expanded. Literal braces
of the body may still sit next to a value (``{{{{a}}}}`` renders as ``{{`` + value + ``}}``);
the result is output, never rendered again.

The values must name exactly the body's placeholders: a placeholder without a value, or a value
for no placeholder, is InvalidArgument listing the names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from docgate.errors import InvalidArgument

MARKER = re.compile(r"\{\{ *([a-z_][a-z0-9_]*) *\}\}")
# Error metadata travels in gRPC trailers (8 KiB by default): list at most this many
# characters of names and count the rest.
_MAX_LISTED = 1024


def placeholders(body: str) -> frozenset[str]:
    """The names of the placeholders in ``body``."""
    return frozenset(match.group(1) for match in MARKER.finditer(body))


def render(body: str, values: Mapping[str, str]) -> str:
    """``body`` with every marker replaced by its value, verbatim.

    InvalidArgument MISSING_TEMPLATE_VALUES when a placeholder has no value (checked first),
    UNKNOWN_TEMPLATE_VALUES when a value names no placeholder; metadata ``field`` = "values",
    ``names`` = the names, sorted and comma-separated.
    """
    wanted = placeholders(body)
    missing = wanted - values.keys()
    if missing:
        raise _names_error("placeholders without a value", "MISSING_TEMPLATE_VALUES", missing)
    unknown = values.keys() - wanted
    if unknown:
        raise _names_error("values for no placeholder", "UNKNOWN_TEMPLATE_VALUES", unknown)
    # A function replacement is inserted as is: re.sub reads no backslash escapes in it.
    return MARKER.sub(lambda match: values[match.group(1)], body)


def _names_error(what: str, reason: str, names: Iterable[str]) -> InvalidArgument:
    listed: list[str] = []
    size = 0
    ordered = sorted(names)
    for name in ordered:
        size += len(name) + 1
        if size > _MAX_LISTED:
            break
        listed.append(name)
    metadata = {"names": ",".join(listed)}
    if len(listed) < len(ordered):
        metadata["unlisted"] = str(len(ordered) - len(listed))
    shown = ", ".join(listed) + (" …" if len(listed) < len(ordered) else "")
    return InvalidArgument(f"{what}: {shown}", field="values", reason=reason, metadata=metadata)
