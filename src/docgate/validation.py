"""Edge validation for every service: request fields become checked values before any SQL runs.

One vocabulary: every failure is InvalidArgument naming the offending field (``field`` in the
ErrorInfo metadata, and in the message), with a machine-readable reason.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Final

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from docgate.errors import InvalidArgument

USERNAME_RE: Final = re.compile(r"[a-z][a-z0-9_.-]{1,63}")
# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is not our job.
EMAIL_RE: Final = re.compile(r"[^@\s\x00]{1,64}@[^@\s.\x00]+(\.[^@\s.\x00]+)+")
ROLE_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{1,49}")
SLUG_RE: Final = re.compile(r"[a-z][a-z0-9-]{1,62}")
MAX_EMAIL_LENGTH: Final = 254
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500
MAX_BATCH_IDS: Final = 100
MAX_SEARCH_QUERY_LENGTH: Final = 1000
# The format docgate.mapping.etag writes.
_ETAG_RE: Final = re.compile(r'W/"([1-9][0-9]{0,9})"')


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    """A canonical UUID string (36 characters, hyphenated) or INVALID_ARGUMENT."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        parsed = None
    if parsed is None or str(parsed) != value.lower() or len(value) != 36:
        raise InvalidArgument(f"{field} must be a UUID", field=field, reason="INVALID_ID")
    return parsed


def optional_id(value: str, field: str) -> uuid.UUID | None:
    """Empty means "not given"."""
    return parse_id(value, field) if value else None


def username(value: str, field: str = "username") -> str:
    if not USERNAME_RE.fullmatch(value):
        raise InvalidArgument(
            f"{field} must be 2-64 characters: a-z first, then a-z, 0-9, '_', '.', '-'",
            field=field,
            reason="INVALID_USERNAME",
        )
    return value


def email(value: str, field: str = "email") -> str:
    if len(value) > MAX_EMAIL_LENGTH or not EMAIL_RE.fullmatch(value):
        raise InvalidArgument(
            f"{field} is not a valid address", field=field, reason="INVALID_EMAIL"
        )
    return value.lower()


def role_name(value: str, field: str = "role") -> str:
    if not ROLE_NAME_RE.fullmatch(value):
        raise InvalidArgument(
            f"{field} must match [a-z][a-z0-9_]{{1,49}}", field=field, reason="INVALID_ROLE_NAME"
        )
    return value


def _no_nul(value: str, field: str, reason: str) -> None:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail inside the driver.
    if "\x00" in value:
        raise InvalidArgument(
            f"{field} must not contain NUL characters", field=field, reason=reason
        )


def text(
    value: str,
    field: str,
    *,
    max_length: int,
    required: bool = False,
    reason: str = "INVALID_TEXT",
) -> str:
    """Free text: at most ``max_length`` characters, no NUL; ``required``: not blank."""
    if (required and not value.strip()) or len(value) > max_length or "\x00" in value:
        raise InvalidArgument(
            f"{field} must be {'1' if required else '0'}-{max_length} characters without NUL",
            field=field,
            reason=reason,
        )
    return value


def slug(value: str, field: str, reason: str) -> str:
    """A template-style name: a-z first, then 1-62 of a-z, 0-9 and '-'."""
    if not SLUG_RE.fullmatch(value):
        raise InvalidArgument(
            f"{field} must match [a-z][a-z0-9-]{{1,62}}", field=field, reason=reason
        )
    return value


def title(value: str, field: str = "title", *, max_length: int = 255) -> str:
    """Trimmed; 1 to ``max_length`` characters after trimming, so never blank."""
    _no_nul(value, field, "INVALID_TITLE")
    value = value.strip()
    if not 1 <= len(value) <= max_length:
        raise InvalidArgument(
            f"{field} must be 1 to {max_length} characters, not only spaces",
            field=field,
            reason="INVALID_TITLE",
        )
    return value


def content(value: str, max_bytes: int, field: str = "content") -> str:
    """A body of at most ``max_bytes`` bytes of UTF-8."""
    _no_nul(value, field, "INVALID_CONTENT")
    # UTF-8 needs at most 4 bytes per character: skip the encode when that bound is enough.
    if len(value) * 4 > max_bytes and len(value.encode()) > max_bytes:
        raise InvalidArgument(
            f"{field} must be at most {max_bytes} bytes (UTF-8)",
            field=field,
            reason="CONTENT_TOO_LARGE",
            metadata={"max_bytes": str(max_bytes)},
        )
    return value


def search_query(value: str, field: str = "query") -> str:
    _no_nul(value, field, "INVALID_QUERY")
    if not value.strip() or len(value) > MAX_SEARCH_QUERY_LENGTH:
        raise InvalidArgument(
            f"{field} must be 1 to {MAX_SEARCH_QUERY_LENGTH} characters, not only spaces",
            field=field,
            reason="INVALID_QUERY",
        )
    return value


def batch_ids(values: Iterable[str], field: str = "ids") -> list[uuid.UUID]:
    """1 to 100 ids; duplicates are allowed and answered once per occurrence."""
    ids = list(values)
    if not 1 <= len(ids) <= MAX_BATCH_IDS:
        raise InvalidArgument(
            f"{field} must hold 1 to {MAX_BATCH_IDS} ids", field=field, reason="INVALID_BATCH_SIZE"
        )
    return [parse_id(value, field) for value in ids]


def page_size(value: int, field: str = "page_size") -> int:
    """0 means the default; larger than the maximum is clamped (AIP-158); negative is refused."""
    if value < 0:
        raise InvalidArgument(
            f"{field} must not be negative", field=field, reason="INVALID_PAGE_SIZE"
        )
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def order_by(value: str, allowed: Collection[str], default: str, field: str = "order_by") -> str:
    """The canonical key of ``allowed`` that ``value`` names (whitespace and case are not
    significant); empty means ``default``."""
    key = " ".join(value.lower().split()) or default
    if key not in allowed:
        raise InvalidArgument(
            f"{field} must be one of: {', '.join(allowed)}", field=field, reason="INVALID_ORDER_BY"
        )
    return key


def update_mask(
    paths: Iterable[str], allowed: Collection[str], *, wildcard: bool = False
) -> frozenset[str]:
    """The requested update paths, a subset of ``allowed``; with ``wildcard``, "*" alone
    means all of them. Empty, or a path not in ``allowed``, is INVALID_ARGUMENT naming it."""
    requested = frozenset(paths)
    if wildcard and requested == {"*"}:
        return frozenset(allowed)
    choices = ", ".join(sorted(allowed)) + (' (or only "*")' if wildcard else "")
    if not requested:
        raise InvalidArgument(
            f"update_mask must name one or more of: {choices}",
            field="update_mask",
            reason="INVALID_UPDATE_MASK",
        )
    unknown = sorted(requested - set(allowed))
    if unknown:
        raise InvalidArgument(
            f"update_mask path {unknown[0]!r} is not updatable; use some of: {choices}",
            field="update_mask",
            reason="INVALID_UPDATE_MASK",
            metadata={"path": unknown[0]},
        )
    return requested


def parse_etag(value: str, field: str = "etag") -> int | None:
    """The row version an etag names; None when no etag was sent."""
    if not value:
        return None
    match = _ETAG_RE.fullmatch(value)
    if match is None:
        raise InvalidArgument(
            f"{field} is not one this service issued", field=field, reason="INVALID_ETAG"
        )
    return int(match.group(1))


def update_etag(request_etag: str, resource_etag: str, resource: str) -> int | None:
    """The version an Update is conditioned on: the request's ``etag`` or the resource's own
    (``<resource>.etag``, where AIP-154 puts it). Both set and different is ambiguous."""
    if request_etag and resource_etag and request_etag != resource_etag:
        raise InvalidArgument(
            f"etag and {resource}.etag differ; send one of them",
            field=f"{resource}.etag",
            reason="CONFLICTING_ETAGS",
        )
    field = "etag" if request_etag else f"{resource}.etag"
    return parse_etag(request_etag or resource_etag, field)


def request_digest(request: Message) -> bytes:
    """What identifies a create request for request_id replays (AIP-155): the whole request
    message, serialized deterministically."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).digest()


def positive(value: int, field: str, reason: str) -> int:
    if value < 1:
        raise InvalidArgument(f"{field} must be at least 1", field=field, reason=reason)
    return value


def finite(value: float, field: str, *, low: float, high: float, reason: str) -> float:
    """A real number in [low, high]; NaN and infinities are refused."""
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidArgument(
            f"{field} must be a number from {low:g} to {high:g}", field=field, reason=reason
        )
    return value


def timestamp(value: Timestamp, field: str) -> datetime:
    """A Timestamp within the range the protobuf spec allows (years 1-9999)."""
    try:
        if not 0 <= value.nanos < 1_000_000_000:
            raise ValueError(field)
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidArgument(
            f"{field} is not a valid timestamp", field=field, reason="INVALID_TIMESTAMP"
        ) from None
