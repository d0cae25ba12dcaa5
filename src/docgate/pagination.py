"""Keyset pagination for every List RPC: opaque page tokens and the page cut, written once.

A listing declares its sort key as a `Keyset` (the kinds of its columns, ending with a unique
one) and fetches ``page_size + 1`` rows ordered by that key, starting strictly after
`Keyset.start`; `Keyset.page` cuts the extra row off and makes the next token from the last row
kept.

A token is ``base64url(checksum(8) || json([version, query_fingerprint, sort_key]))``:

* ``sort_key`` is the ordering values of the last row of the previous page (ending with its id);
  the next page starts strictly after it, so rows never repeat or go missing between pages
  while nothing changes.
* ``query_fingerprint`` binds the token to the request parameters that define the result set
  (order, filters, show_deleted, search query — not page_size): reusing it with other
  parameters is INVALID_ARGUMENT.
* The checksum makes a damaged or hand-edited token INVALID_ARGUMENT instead of a silently
  different position. It is not a secret MAC on purpose: a token carries no authority (every
  page re-applies the caller's policy), so a forged one can only name a position the caller
  could have asked for anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final, TypeVar

from sqlalchemy import Select, tuple_

from docgate.errors import InvalidArgument

_VERSION: Final = 1
_CHECKSUM_BYTES: Final = 8
_MAX_TOKEN_LENGTH: Final = 2048
_PERSON: Final = b"docgate-page"

JsonScalar = str | int | float | bool | None


def fingerprint(*parts: object) -> str:
    """A short stable digest of the parameters a token is bound to."""
    body = json.dumps([str(part) for part in parts], separators=(",", ":")).encode()
    return hashlib.blake2b(body, digest_size=8, person=_PERSON).hexdigest()


def _checksum(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=_CHECKSUM_BYTES, person=_PERSON).digest()


def encode(query_fingerprint: str, sort_key: list[JsonScalar]) -> str:
    body = json.dumps([_VERSION, query_fingerprint, sort_key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(_checksum(body) + body).rstrip(b"=").decode()


def _invalid(message: str = "page_token is not valid") -> InvalidArgument:
    return InvalidArgument(message, field="page_token", reason="INVALID_PAGE_TOKEN")


def decode(token: str, query_fingerprint: str) -> list[Any]:
    """The sort key a token carries, checked against this request's fingerprint."""
    if len(token) > _MAX_TOKEN_LENGTH:
        raise _invalid()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _invalid() from exc
    checksum, body = raw[:_CHECKSUM_BYTES], raw[_CHECKSUM_BYTES:]
    if checksum != _checksum(body):
        raise _invalid()
    try:
        version, bound_to, sort_key = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise _invalid() from exc
    if version != _VERSION or not isinstance(sort_key, list):
        raise _invalid()
    if bound_to != query_fingerprint:
        raise _invalid("page_token belongs to a request with other parameters")
    return sort_key


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
Row = TypeVar("Row")
SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")


class KeyKind(Enum):
    """How one sort-key column is written into a token and read back (typed, or refused)."""

    TEXT = "text"
    UUID = "uuid"
    TIMESTAMP = "timestamp"  # microseconds since the epoch: exact, unlike a float
    NUMBER = "number"

    def write(self, value: Any) -> JsonScalar:
        if self is KeyKind.TIMESTAMP:
            return int((value - _EPOCH) // _MICROSECOND)
        if self is KeyKind.UUID:
            return str(value)
        if self is KeyKind.NUMBER:
            return float(value)
        return str(value)

    def read(self, value: Any) -> Any:
        if self is KeyKind.TEXT and isinstance(value, str):
            return value
        if self is KeyKind.TIMESTAMP and type(value) is int:
            return _EPOCH + value * _MICROSECOND
        if self is KeyKind.NUMBER and type(value) in (int, float):
            return float(value)
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

    def start(self, page_token: str, query_fingerprint: str) -> tuple[Any, ...] | None:
        """The typed sort key this page starts after; None on the first page (no token)."""
        if not page_token:
            return None
        values = decode(page_token, query_fingerprint)
        if len(values) != len(self.kinds):
            raise _invalid()
        return tuple(kind.read(value) for kind, value in zip(self.kinds, values, strict=True))

    def select(
        self,
        stmt: SelectT,
        columns: Sequence[Any],
        page_token: str,
        query_fingerprint: str,
        page_size: int,
    ) -> SelectT:
        """``stmt`` as one ascending keyset page over ``columns`` (the sort key's columns)."""
        start = self.start(page_token, query_fingerprint)
        if start is not None:
            stmt = stmt.where(tuple_(*columns) > tuple_(*start))
        return stmt.order_by(*columns).limit(self.limit(page_size))

    @staticmethod
    def limit(page_size: int) -> int:
        """Rows to fetch: one more than the page, to know whether another page follows."""
        return page_size + 1

    def page(
        self,
        rows: Sequence[Row],
        page_size: int,
        query_fingerprint: str,
        key: Callable[[Row], Sequence[Any]],
    ) -> tuple[Sequence[Row], str]:
        """The rows of this page and the next page token ("" when this is the last page)."""
        if len(rows) <= page_size:
            return rows, ""
        last = key(rows[page_size - 1])
        values = [kind.write(value) for kind, value in zip(self.kinds, last, strict=True)]
        return rows[:page_size], encode(query_fingerprint, values)
