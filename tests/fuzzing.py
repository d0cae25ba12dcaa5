"""Hypothesis strategies for protobuf requests, built from message descriptors alone.

`payloads(descriptor, vocabulary)` draws what a hostile client puts on the wire for one method:
mostly a request message in which every field may carry boundary lengths, NUL, astral, RTL and
combining text, int32/int64 extremes, NaN and infinities, unknown enum values, up to 120
repeated items, junk update masks and out-of-range timestamps; one request in three is tame
(plausible values only, nearly every field set), so that calls with several required fields
get through too; and one draw in four is bytes that are no valid encoding of the request
(random, truncated, bit-flipped, invalid UTF-8 in a string field, nesting past the parser's
recursion limit). A `Vocabulary` supplies the plausible values by field name: existing ids,
names, etags, page tokens from a real first page.

Nothing here knows docgate's services: a new RPC or field is fuzzed as soon as it is in a
descriptor.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

Strategy = st.SearchStrategy
MAX_DEPTH = 3
MAX_REPEATED = 120
MIB = 1024 * 1024

# The limits the proto comments and docgate.validation state, and their neighbours: role names
# 2-50, UUIDs 36, slugs 2-63, usernames 2-64, emails 254, titles 255, search queries 1000, page
# tokens 4096, descriptions 10,000.
LENGTHS = (2, 35, 36, 37, 49, 50, 51, 62, 63, 64, 65, 254, 255, 256, 1000, 1001, 4096, 4097)
LONG_LENGTHS = (8193, 10_000, 10_001)
# One, two, three and four UTF-8 bytes; right-to-left; a combining mark; a space; NUL.
FILL = ("a", "é", "€", "😀", "א", "\u0301", " ", "\x00")
SPECIAL = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "😀",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",  # a ZWJ family
    "\U0001d54f\U0001d550\U0001d551",  # mathematical double-struck XYZ: astral
    "\u202etxt.exe",
    "שלום עולם",
    "مرحبا",
    "e\u0301",
    "\ufeff",
    "\uffff",
    "\U0010ffff",
    "\u2028",
    "\r\n",
    "\t",
    "*",
    "%",
    "_",
    "\\",
    "'",
    '"',
    "' OR 1=1 --",
    "/*",
    "{{name}}",
    "{{",
    "}}",
    "-1",
    "0",
    "NaN",
    'W/"1"',
    'W/"0"',
    'W/"99999999999"',
    "a:*",
    "!(",
    "& | !",
    "-",
    '"unterminated',
    "or or or",
)
DOUBLES = (0.0, -0.0, 1.0, 5.0, -1.0, 0.9999999999, 5.0000000001, 2.5, 1e308, -1e308, 5e-324)
DOUBLES += (float("nan"), float("inf"), float("-inf"))
INT32 = (-(2**31), -1, 0, 1, 2, 5, 6, 49, 50, 51, 99, 100, 101, 499, 500, 501, 2**31 - 1)
INT64 = (*INT32, -(2**63), 2**31, 2**32, 2**53 + 1, 2**63 - 1)
UNKNOWN_ENUM_VALUES = (-1, 5, 99, -(2**31), 2**31 - 1)
# google.protobuf.Timestamp's range is 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
_NOW = int(time.time())
TIMESTAMP_SECONDS = (-62135596800, -62135596801, 253402300799, 253402300800, 0, -1)
TIMESTAMP_SECONDS += (_NOW - 3600, _NOW + 3600, _NOW + 86400 * 365, -(2**63), 2**63 - 1, 2**32)
TIMESTAMP_NANOS = (0, 1, 999_999_999, 1_000_000_000, -1, 2**31 - 1, -(2**31))
MASK_JUNK = ("", "*", "id", "etag", "a.b", "title,content", " title", "TITLE", "*.title", "\x00")
MASK_JUNK += ("😀", "create_time.seconds", "update_mask")
INVALID_UTF8 = (b"\xff", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"a\xe2\x82")

_INTS: Mapping[int, tuple[int, int, tuple[int, ...]]] = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1, INT32),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1, INT32),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1, INT32),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1, INT64),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1, INT64),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1, INT64),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1, (0, 1, 2**31, 2**32 - 1)),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1, (0, 1, 2**31, 2**32 - 1)),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1, (0, 1, 2**63, 2**64 - 1)),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1, (0, 1, 2**63, 2**64 - 1)),
}


def weighted(*choices: tuple[int, Strategy[Any]]) -> Strategy[Any]:
    """One of ``choices``, each drawn with probability proportional to its weight."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


@functools.cache
def distinct_words(total_bytes: int) -> str:
    """Made-up words (no vowels, so the stemmer leaves each its own lexeme) filling
    ``total_bytes`` of UTF-8: the content whose tsvector is largest for its size."""
    letters = "bcdfghjklmnpqrstvwxz"
    words: list[str] = []
    size = 0
    for length in itertools.count(4):
        for combo in itertools.product(letters, repeat=length):
            if size + length + 1 > total_bytes:
                return " ".join(words)
            words.append("".join(combo))
            size += length + 1
    raise AssertionError("unreachable")


# Builders, not strings, so that a megabyte is only made when it is drawn.
_HUGE: tuple[tuple[str, Callable[[], str]], ...] = (
    ("'a' x 1 MiB", lambda: "a" * MIB),
    ("'a' x (1 MiB + 1)", lambda: "a" * (MIB + 1)),
    ("'é' x 512 Ki", lambda: "é" * (MIB // 2)),
    ("'é' x (512 Ki + 1)", lambda: "é" * (MIB // 2 + 1)),
    ("'😀' x 256 Ki", lambda: "😀" * (MIB // 4)),
    ("'😀' x (256 Ki + 1)", lambda: "😀" * (MIB // 4 + 1)),
    ("distinct words, 640 KiB", lambda: distinct_words(640 * 1024)),
    ("distinct words, 1 MiB", lambda: distinct_words(MIB)),
)


def huge_strings() -> Strategy[str]:
    """Strings at the 1 MiB content limit (in bytes of 1- to 4-byte characters) and just past
    it, and distinct-word text within it."""
    return st.sampled_from(_HUGE).map(lambda named: named[1]())


def hostile_strings(*, huge: bool) -> Strategy[str]:
    """Text a validator must survive; with ``huge``, now and then a megabyte of it."""
    boundary = st.tuples(st.sampled_from(LENGTHS), st.sampled_from(FILL))
    long = st.tuples(st.sampled_from(LONG_LENGTHS), st.sampled_from(FILL))
    choices: list[tuple[int, Strategy[str]]] = [
        (4, st.sampled_from(SPECIAL)),
        (3, boundary.map(lambda nc: nc[1] * nc[0])),
        # st.text draws no lone surrogates: protobuf cannot encode them (they are sent as
        # invalid UTF-8 on the wire instead, by `payloads`).
        (3, st.text(max_size=40)),
        (2, st.uuids().map(str)),
        (1, st.uuids().map(lambda u: "{" + str(u).upper() + "}")),
    ]
    if huge:
        choices += [(1, long.map(lambda nc: nc[1] * nc[0])), (1, huge_strings())]
    return weighted(*choices)


@dataclass(frozen=True)
class Vocabulary:
    """Plausible values by field name, so that some calls get past validation: real ids,
    names, etags and page tokens (``values``) and well-formed ones (``patterns``).

    A key is a field name (``project_id``), or ``Resource.field`` for a field of the messages
    whose name contains ``Resource`` (``Document.id`` serves ``GetDocumentRequest.id`` and
    ``UpdateDocumentRequest.document.id``), which is preferred; a map field's keys use
    ``field[key]``. A name ending in ``_id``, ``ids`` or ``_by`` with no entry of its own uses
    the one for ``id``.
    """

    values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    patterns: Mapping[str, Strategy[Any]] = field(default_factory=dict)

    def _options(self, key: str) -> list[Strategy[Any]]:
        """Real values three times as often as merely well-formed ones."""
        options: list[tuple[int, Strategy[Any]]] = []
        if self.values.get(key):
            options.append((3, st.sampled_from(list(self.values[key]))))
        if key in self.patterns:
            options.append((1, self.patterns[key]))
        return [weighted(*options)] if options else []

    def plausible(self, name: str, context: Sequence[str] = ()) -> Strategy[Any] | None:
        """Values for field ``name`` of the message ``context[-1]`` (nested in the others)."""
        for message in reversed(context):
            for key in sorted({*self.values, *self.patterns}):  # sorted: reproducible
                resource, _, field_name = key.partition(".")
                if field_name == name and resource in message:
                    specific = self._options(key)
                    general = self._options(name)
                    return weighted((3, st.one_of(specific)), *((1, g) for g in general))
        options = self._options(name)
        if not options and name.endswith(("_id", "ids", "_by")):
            options = self._options("id")
        return st.one_of(options) if options else None


@dataclass(frozen=True)
class _Mode:
    """How one request is drawn: ``tame`` draws only plausible values and sets almost every
    field, so that requests with several required fields sometimes succeed; otherwise each
    field is hostile one time in five and unset one time in four."""

    vocabulary: Vocabulary
    tame: bool

    def present(self, value: Strategy[Any]) -> Strategy[Any]:
        return weighted((9 if self.tame else 3, value), (1, st.just(_UNSET)))

    def mix(self, plausible: Strategy[Any] | None, hostile: Strategy[Any]) -> Strategy[Any]:
        if plausible is None:
            return hostile
        return plausible if self.tame else weighted((4, plausible), (1, hostile))


_UNSET = object()


def _string(name: str, context: Sequence[str], mode: _Mode, *, huge: bool) -> Strategy[str]:
    hostile = st.text(max_size=20) if mode.tame else hostile_strings(huge=huge)
    return mode.mix(mode.vocabulary.plausible(name, context), hostile)


def _timestamp(descriptor: Descriptor, mode: _Mode) -> Strategy[Message]:
    cls = message_factory.GetMessageClass(descriptor)
    if mode.tame:  # from an hour to a year ahead
        later = st.integers(3600, 365 * 86400).map(lambda delta: _NOW + delta)
        return later.map(lambda s: cls(seconds=s))
    seconds = st.one_of(st.sampled_from(TIMESTAMP_SECONDS), st.integers(-(2**63), 2**63 - 1))
    nanos = st.one_of(st.sampled_from(TIMESTAMP_NANOS), st.integers(-(2**31), 2**31 - 1))
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


def _resource_paths(containing: Descriptor | None) -> list[str]:
    """The field names of the resource an update mask in ``containing`` is about: its first
    message field that is not a well-known type."""
    for candidate in containing.fields if containing else ():
        message = candidate.message_type
        if message is not None and not message.full_name.startswith("google.protobuf."):
            return [f.name for f in message.fields]
    return []


def _field_mask(
    descriptor: Descriptor, containing: Descriptor | None, mode: _Mode
) -> Strategy[Message]:
    """A mask naming one or two of the resource's fields, "*", or a list of those and junk."""
    cls = message_factory.GetMessageClass(descriptor)
    resource = _resource_paths(containing)
    paths = st.sampled_from(sorted(set(resource) | set(MASK_JUNK)))
    masks = [(1, st.just(["*"]))]
    if not mode.tame:
        masks.append((2, st.lists(paths, max_size=8)))
    if resource:
        masks.append((3, st.lists(st.sampled_from(resource), min_size=1, max_size=2)))
    return weighted(*masks).map(lambda p: cls(paths=p))


def _scalar(
    f: FieldDescriptor, context: Sequence[str], mode: _Mode, *, repeated: bool
) -> Strategy[Any]:
    if f.type == FieldDescriptor.TYPE_STRING:
        return _string(f.name, context, mode, huge=not repeated)
    plausible = mode.vocabulary.plausible(f.name, context)
    return mode.mix(plausible, _tame_scalar(f) if mode.tame else _hostile_scalar(f))


def _tame_scalar(f: FieldDescriptor) -> Strategy[Any]:
    if f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(0, 10)
    if f.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in f.enum_type.values])
    if f.type in _INTS:
        return st.integers(0, 100)
    return _hostile_scalar(f)  # bool, bytes


def _hostile_scalar(f: FieldDescriptor) -> Strategy[Any]:
    if f.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if f.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if f.type == FieldDescriptor.TYPE_DOUBLE:
        return st.one_of(st.sampled_from(DOUBLES), st.floats())
    if f.type == FieldDescriptor.TYPE_FLOAT:
        return st.one_of(st.sampled_from(DOUBLES[:4] + DOUBLES[-3:]), st.floats(width=32))
    if f.type == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in f.enum_type.values]
        unknown = [] if f.enum_type.is_closed else list(UNKNOWN_ENUM_VALUES)
        return weighted((3, st.sampled_from(known)), (1, st.sampled_from(unknown or known)))
    low, high, edges = _INTS[f.type]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _repeated(element: Strategy[Any], mode: _Mode) -> Strategy[list[Any]]:
    """A list of up to MAX_REPEATED items, with the batch limit's neighbours (99, 100, 101) and
    one value repeated throughout."""
    short = st.lists(element, min_size=1, max_size=4)
    if mode.tame:
        return short
    sizes = st.sampled_from((99, 100, 101, MAX_REPEATED))
    same = st.tuples(element, sizes).map(lambda vs: [vs[0]] * vs[1])
    long = st.lists(element, max_size=MAX_REPEATED)
    return weighted((4, short), (1, same), (1, long))


def _map(
    f: FieldDescriptor, context: Sequence[str], mode: _Mode, depth: int
) -> Strategy[dict[Any, Any]]:
    entry = f.message_type
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    if key_field.type == FieldDescriptor.TYPE_STRING:
        key = _string(f"{f.name}[key]", context, mode, huge=False)
    else:
        key = _scalar(key_field, context, mode, repeated=True)
    if value_field.message_type is not None:
        value = _message(value_field.message_type, mode, depth + 1, (), None)
    else:
        value = _scalar(value_field, (*context, entry.name), mode, repeated=False)
    drawn = st.dictionaries(key, value, max_size=6)
    # A whole map from the vocabulary: exactly the keys a template wants, say.
    plausible = mode.vocabulary.plausible(f.name, context)
    if plausible is None:
        return drawn
    return plausible if mode.tame else weighted((1, plausible), (2, drawn))


def _field(f: FieldDescriptor, context: Sequence[str], mode: _Mode, depth: int) -> Strategy[Any]:
    message = f.message_type
    if message is not None and message.GetOptions().map_entry:
        return _map(f, context, mode, depth)
    if message is not None:
        element = _message(message, mode, depth + 1, context, f.containing_type)
    else:
        element = _scalar(f, context, mode, repeated=f.is_repeated)
    return _repeated(element, mode) if f.is_repeated else element


def _message(
    descriptor: Descriptor,
    mode: _Mode,
    depth: int,
    context: Sequence[str],
    parent: Descriptor | None,
) -> Strategy[Message]:
    cls = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamp(descriptor, mode)
    if descriptor.full_name == "google.protobuf.FieldMask":
        return _field_mask(descriptor, parent, mode)
    if depth >= MAX_DEPTH:
        return st.just(cls())
    inner = (*context, descriptor.name)
    fields = {f.name: mode.present(_field(f, inner, mode, depth)) for f in descriptor.fields}
    return st.fixed_dictionaries(fields).map(
        lambda values: _build(cls, {k: v for k, v in values.items() if v is not _UNSET})
    )


def messages(descriptor: Descriptor, vocabulary: Vocabulary) -> Strategy[Message]:
    """Request messages of ``descriptor``: one in three tame (plausible values, nearly every
    field set), the others hostile; nested messages down to MAX_DEPTH, below which they are
    empty."""
    hostile = _message(descriptor, _Mode(vocabulary, tame=False), 0, (), None)
    tame = _message(descriptor, _Mode(vocabulary, tame=True), 0, (), None)
    return weighted((2, hostile), (1, tame))


def _build(cls: type[Message], values: Mapping[str, Any]) -> Message:
    message = cls()
    for name, value in values.items():
        f = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name) if f.is_repeated or f.message_type else None
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if f.message_type.fields_by_name["value"].message_type is not None:
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif f.is_repeated:
            target.extend(value)
        elif f.message_type is not None:
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


# --- the wire -------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


@dataclass(frozen=True)
class Payload:
    """What is sent: ``data``, and the message it encodes when it is one."""

    kind: str
    data: bytes
    message: Message | None = None

    def __repr__(self) -> str:
        body = describe(self.message) if self.message is not None else repr(self.data[:80])
        return f"<{self.kind}, {len(self.data)} bytes: {body}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis prints a failing draw (it would list the fields, megabytes and all)."""
        printer.text(repr(self))


_BROKEN = (
    "random bytes",
    "truncated",
    "garbage appended",
    "byte flipped",
    "invalid UTF-8",
    "nested 200 deep",
    "overlong length",
    "unknown field",
)
# What to break and how, drawn independently of the message so that no strategy is built per
# draw (hypothesis labels every new strategy, and a megabyte constant makes that slow).
_BREAKAGE = st.tuples(
    st.sampled_from(_BROKEN),
    st.integers(0, 2**20),
    st.integers(1, 255),
    st.binary(max_size=256),
    st.sampled_from(INVALID_UTF8),
)


def _broken(message: Message, breakage: tuple[str, int, int, bytes, bytes]) -> Payload:
    kind, position, flip, noise, utf8 = breakage
    valid = message.SerializeToString()
    at = position % max(len(valid), 1)
    strings = [f.number for f in message.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_STRING]
    if kind == "truncated":
        data = valid[:at]
    elif kind == "garbage appended":
        data = valid + (noise or b"\xff")
    elif kind == "byte flipped" and valid:
        data = valid[:at] + bytes([valid[at] ^ flip]) + valid[at + 1 :]
    elif kind == "invalid UTF-8" and strings:
        data = valid + _length_delimited(strings[position % len(strings)], utf8)
    elif kind == "nested 200 deep":  # start-group tags past the parser's recursion limit (100)
        data = b"\x0b" * 200 + b"\x0c" * 200
    elif kind == "overlong length":  # a length prefix that promises more than follows
        data = valid + _varint(1 << 3 | 2) + _varint(2**31) + b"x"
    elif kind == "unknown field":  # must be accepted and ignored
        data = valid + _varint(99_999 << 3) + _varint(1)
    else:
        kind, data = "random bytes", noise
    return Payload(kind, data)


def payloads(descriptor: Descriptor, vocabulary: Vocabulary) -> Strategy[Payload]:
    """Mostly a serialized request message; one draw in four, bytes that are not one."""
    requests = messages(descriptor, vocabulary)
    encoded = requests.map(lambda m: Payload("message", m.SerializeToString(), m))
    broken = st.tuples(requests, _BREAKAGE).map(lambda mb: _broken(*mb))
    return weighted((3, encoded), (1, broken))


# --- printing -------------------------------------------------------------------------------


def _short(value: Any) -> str:
    if isinstance(value, str | bytes) and len(value) > 48:
        return f"{value[:24]!r}...({len(value)} {'chars' if isinstance(value, str) else 'bytes'})"
    return repr(value)


def describe(message: Message) -> str:
    """A one-line rendering of ``message`` with long values and lists abbreviated."""
    parts = []
    for f, value in message.ListFields():
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            items = list(value.items())
            shown = ", ".join(f"{_short(k)}: {_short(v)}" for k, v in items[:4])
            parts.append(f"{f.name}={{{shown}{', ...' if len(items) > 4 else ''}}} ({len(items)})")
        elif f.is_repeated:
            items = list(value)
            render = describe if f.message_type is not None else _short
            shown = ", ".join(render(item) for item in items[:3])
            parts.append(f"{f.name}=[{shown}{', ...' if len(items) > 3 else ''}] ({len(items)})")
        elif f.message_type is not None:
            parts.append(f"{f.name}={describe(value)}")
        else:
            parts.append(f"{f.name}={_short(value)}")
    return f"{message.DESCRIPTOR.name}({', '.join(parts)})"
