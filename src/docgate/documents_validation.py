"""Edge validation for DocumentService requests: every field checked before any SQL runs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Final

from docgate.errors import InvalidArgument
from docgate.validation import parse_id

MAX_TITLE_LENGTH: Final = 255
MAX_BATCH_IDS: Final = 100
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500
MAX_SEARCH_QUERY_LENGTH: Final = 1000
UPDATABLE_FIELDS: Final = ("title", "content", "is_public", "requires_paid_access")
# order_by → (column, descending). The id column breaks ties in the same direction, so each
# order is one backward or forward scan of a (column, id) index.
ORDER_BY: Final = {
    "create_time desc": ("create_time", True),
    "create_time": ("create_time", False),
    "create_time asc": ("create_time", False),
    "update_time desc": ("update_time", True),
    "title": ("title", False),
    "title asc": ("title", False),
}
DEFAULT_ORDER_BY: Final = "create_time desc"
# The format docgate.mapping.etag writes.
_ETAG_RE = re.compile(r'W/"([1-9][0-9]{0,9})"')


def _no_nul(value: str, field: str, reason: str) -> None:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail inside the driver.
    if "\x00" in value:
        raise InvalidArgument(
            f"{field} must not contain NUL characters", reason=reason, metadata={"field": field}
        )


def title(value: str) -> str:
    _no_nul(value, "title", "INVALID_TITLE")
    if not 1 <= len(value) <= MAX_TITLE_LENGTH:
        raise InvalidArgument(
            f"title must be 1 to {MAX_TITLE_LENGTH} characters", reason="INVALID_TITLE"
        )
    return value


def content(value: str, max_bytes: int) -> str:
    _no_nul(value, "content", "INVALID_CONTENT")
    # UTF-8 needs at most 4 bytes per character: skip the encode when that bound is enough.
    if len(value) * 4 > max_bytes and len(value.encode()) > max_bytes:
        raise InvalidArgument(
            f"content must be at most {max_bytes} bytes (UTF-8)",
            reason="CONTENT_TOO_LARGE",
            metadata={"max_bytes": str(max_bytes)},
        )
    return value


def optional_id(value: str, field: str) -> uuid.UUID | None:
    return parse_id(value, field) if value else None


def batch_ids(values: Iterable[str]) -> list[uuid.UUID]:
    """1 to 100 ids; duplicates are allowed and answered once per occurrence."""
    ids = list(values)
    if not 1 <= len(ids) <= MAX_BATCH_IDS:
        raise InvalidArgument(
            f"ids must hold 1 to {MAX_BATCH_IDS} ids", reason="INVALID_BATCH_SIZE"
        )
    return [parse_id(value, "ids") for value in ids]


def page_size(value: int) -> int:
    if value < 0:
        raise InvalidArgument("page_size must not be negative", reason="INVALID_PAGE_SIZE")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def order_by(value: str) -> str:
    """The canonical whitelist key for ``value`` (whitespace and case are not significant)."""
    key = " ".join(value.lower().split()) or DEFAULT_ORDER_BY
    if key not in ORDER_BY:
        raise InvalidArgument(
            "order_by must be one of: create_time desc, create_time, update_time desc, title",
            reason="INVALID_ORDER_BY",
        )
    return key


def search_query(value: str) -> str:
    _no_nul(value, "query", "INVALID_QUERY")
    if not value.strip() or len(value) > MAX_SEARCH_QUERY_LENGTH:
        raise InvalidArgument(
            f"query must be 1 to {MAX_SEARCH_QUERY_LENGTH} characters, not only spaces",
            reason="INVALID_QUERY",
        )
    return value


def update_mask(paths: Iterable[str]) -> frozenset[str]:
    """The fields to write: a subset of UPDATABLE_FIELDS; "*" (alone) means all of them."""
    wanted = frozenset(paths)
    if wanted == {"*"}:
        return frozenset(UPDATABLE_FIELDS)
    if not wanted or not wanted <= set(UPDATABLE_FIELDS):
        raise InvalidArgument(
            "update_mask must list some of: title, content, is_public, requires_paid_access "
            '(or only "*")',
            reason="INVALID_UPDATE_MASK",
        )
    return wanted


def parse_etag(value: str) -> int | None:
    """The row version an etag names; None when no etag was sent."""
    if not value:
        return None
    match = _ETAG_RE.fullmatch(value)
    if match is None:
        raise InvalidArgument("etag is not one this service issued", reason="INVALID_ETAG")
    return int(match.group(1))
