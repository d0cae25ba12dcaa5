"""Keyset pagination for every List RPC: opaque page tokens and the page cut, written once.

A listing declares its sort key as a `Keyset` (the kinds of its columns, ending with a unique
one) and fetches ``page_size + 1`` rows ordered by that key, starting strictly after
`Keyset.start`; `Keyset.page` cuts the extra row off and makes the next token from the last row
kept.

A token is ``base64url(mac(16) || json([version, query_fingerprint, sort_key]))``:

* ``sort_key`` is the ordering values of the last row of the previous page (ending with its id);
  the next page starts strictly after it, so rows never repeat or go missing between pages
  while nothing changes.
* ``query_fingerprint`` binds the token to the request parameters that define the result set
  (order, filters, show_deleted, search query — not page_size): reusing it with other
  parameters is INVALID_ARGUMENT.
* The MAC (keyed BLAKE2b, `PageTokens`) makes a damaged, hand-edited or forged token
  INVALID_ARGUMENT: a token carries no authority (every page re-applies the caller's policy),
  but a forged sort key must not reach the database as a value nobody validated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final, TypeVar

from sqlalchemy import Select, tuple_

from docgate.errors import InvalidArgument

_VERSION: Final = 2
_MAC_BYTES: Final = 16
# Every token docgate issues fits: the longest sort key is a 255-character title, at most 4
# UTF-8 bytes a character (tests/unit/test_documents_units.py proves it over every script).
_MAX_TOKEN_LENGTH: Final = 4096
_MAX_TEXT_KEY: Final = 1024
_PERSON: Final = b"docgate-page"
# What a repeated message field adds per item (tag + length varint), and what a page keeps
# free for its next_page_token and total_size.
ITEM_OVERHEAD: Final = 6
PAGE_RESERVE: Final = _MAX_TOKEN_LENGTH + 32

JsonScalar = str | int | float | bool | None


def fingerprint(*parts: object) -> str:
    """A short stable digest of the parameters a token is bound to."""
    body = json.dumps([str(part) for part in parts], separators=(",", ":")).encode()
    return hashlib.blake2b(body, digest_size=8, person=_PERSON).hexdigest()


def fitting(sizes: Iterable[int], budget: int) -> int:
    """How many leading items of these serialized sizes a page holds within ``budget`` bytes
    (with their per-item overhead and room for the page's token)."""
    room, count = budget - PAGE_RESERVE, 0
    for size in sizes:
        room -= size + ITEM_OVERHEAD
        if room < 0:
            break
        count += 1
    return count


def _invalid(message: str = "page_token is not valid") -> InvalidArgument:
    return InvalidArgument(message, field="page_token", reason="INVALID_PAGE_TOKEN")


def _no_constants(name: str) -> None:
    raise ValueError(name)  # NaN and infinities are not JSON and never in a token we write


class PageTokens:
    """Writes and reads page tokens, authenticated with a keyed MAC (BLAKE2b under a server
    secret every process of a deployment shares), so a token is either one this deployment
    issued or INVALID_PAGE_TOKEN — a hand-made one cannot reach the database. What a token
    carries is still validated by type and range on the way back (defence in depth)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the page token key must be at least 16 bytes")
        self._key = key[:64]

    def _mac(self, body: bytes) -> bytes:
        digest = hashlib.blake2b(body, digest_size=_MAC_BYTES, key=self._key, person=_PERSON)
        return digest.digest()

    def encode(self, query_fingerprint: str, sort_key: list[JsonScalar]) -> str:
        body = json.dumps(
            [_VERSION, query_fingerprint, sort_key],
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        ).encode()
        return base64.urlsafe_b64encode(self._mac(body) + body).rstrip(b"=").decode()

    def decode(self, token: str, query_fingerprint: str) -> list[Any]:
        """The sort key a token carries, checked against this request's fingerprint."""
        if len(token) > _MAX_TOKEN_LENGTH:
            raise _invalid()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise _invalid() from exc
        mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(body)):
            raise _invalid()
        try:
            version, bound_to, sort_key = json.loads(body, parse_constant=_no_constants)
        except (ValueError, TypeError, RecursionError) as exc:
            raise _invalid() from exc
        if version != _VERSION or not isinstance(sort_key, list):
            raise _invalid()
        if bound_to != query_fingerprint:
            raise _invalid("page_token belongs to a request with other parameters")
        return sort_key


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
# The datetimes PostgreSQL and Python share (years 1..9999), in microseconds from the epoch.
_MIN_US: Final = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MICROSECOND
_MAX_US: Final = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // _MICROSECOND
Row = TypeVar("Row")


def _storable(value: str) -> bool:
    """Text PostgreSQL can compare: bounded, no NUL, no lone surrogate."""
    if len(value) > _MAX_TEXT_KEY or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")


class KeyKind(Enum):
    """How one sort-key column is written into a token and read back (typed, or refused)."""

    TEXT = "text"
    UUID = "uuid"
    TIMESTAMP = "timestamp"  # microseconds since the epoch: exact, unlike a float
    NUMBER = "number"
    INTEGER = "integer"  # bigint ids: exact, unlike NUMBER's float

    def write(self, value: Any) -> JsonScalar:
        if self is KeyKind.TIMESTAMP:
            return int((value - _EPOCH) // _MICROSECOND)
        if self is KeyKind.UUID:
            return str(value)
        if self is KeyKind.NUMBER:
            return float(value)
        if self is KeyKind.INTEGER:
            return int(value)
        return str(value)

    def read(self, value: Any) -> Any:
        if self is KeyKind.TEXT and isinstance(value, str) and _storable(value):
            return value
        if self is KeyKind.TIMESTAMP and type(value) is int and _MIN_US <= value <= _MAX_US:
            return _EPOCH + value * _MICROSECOND
        if self is KeyKind.NUMBER and type(value) in (int, float) and _finite(value):
            return float(value)
        if self is KeyKind.INTEGER and type(value) is int and abs(value) < 2**63:
            return value
        if self is KeyKind.UUID and isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                pass
        raise _invalid()


@dataclass(frozen=True, slots=True)
class Keyset:
    """The sort key of one listing, by column kind; the last column must be unique (an id or a
    unique name), so "strictly after the last row" never skips or repeats a row."""

    kinds: tuple[KeyKind, ...]

    def start(
        self, tokens: PageTokens, page_token: str, query_fingerprint: str
    ) -> tuple[Any, ...] | None:
        """The typed sort key this page starts after; None on the first page (no token)."""
        if not page_token:
            return None
        values = tokens.decode(page_token, query_fingerprint)
        if len(values) != len(self.kinds):
            raise _invalid()
        return tuple(kind.read(value) for kind, value in zip(self.kinds, values, strict=True))

    def select(
        self,
        tokens: PageTokens,
        stmt: SelectT,
        columns: Sequence[Any],
        page_token: str,
        query_fingerprint: str,
        page_size: int,
    ) -> SelectT:
        """``stmt`` as one ascending keyset page over ``columns`` (the sort key's columns)."""
        start = self.start(tokens, page_token, query_fingerprint)
        if start is not None:
            stmt = stmt.where(tuple_(*columns) > tuple_(*start))
        return stmt.order_by(*columns).limit(self.limit(page_size))

    @staticmethod
    def limit(page_size: int) -> int:
        """Rows to fetch: one more than the page, to know whether another page follows."""
        return page_size + 1

    def page(
        self,
        tokens: PageTokens,
        rows: Sequence[Row],
        page_size: int,
        query_fingerprint: str,
        key: Callable[[Row], Sequence[Any]],
    ) -> tuple[Sequence[Row], str]:
        """The rows of this page and the next page token ("" when this is the last page).

        ``page_size`` may be smaller than the request's (a page cut short by the response
        budget): the token then starts after the last row kept, so nothing is lost."""
        if len(rows) <= page_size:
            return rows, ""
        if page_size < 1:
            raise ValueError("a page keeps at least one row")
        last = key(rows[page_size - 1])
        values = [kind.write(value) for kind, value in zip(self.kinds, last, strict=True)]
        return rows[:page_size], tokens.encode(query_fingerprint, values)
