"""Edge validation: turn request fields into checked values before any SQL runs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from docgate.errors import InvalidArgument

USERNAME_RE = re.compile(r"[a-z][a-z0-9_.-]{1,63}")
# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is not our job.
EMAIL_RE = re.compile(r"[^@\s\x00]{1,64}@[^@\s.\x00]+(\.[^@\s.\x00]+)+")
ROLE_NAME_RE = re.compile(r"[a-z][a-z0-9_]{1,49}")
MAX_EMAIL_LENGTH = 254
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    """A canonical UUID string (36 characters, hyphenated) or INVALID_ARGUMENT."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        parsed = None
    if parsed is None or str(parsed) != value.lower() or len(value) != 36:
        raise InvalidArgument(
            f"{field} must be a UUID", reason="INVALID_ID", metadata={"field": field}
        )
    return parsed


def username(value: str) -> str:
    if not USERNAME_RE.fullmatch(value):
        raise InvalidArgument(
            "username must be 2-64 characters: a-z first, then a-z, 0-9, '_', '.', '-'",
            reason="INVALID_USERNAME",
        )
    return value


def email(value: str) -> str:
    if len(value) > MAX_EMAIL_LENGTH or not EMAIL_RE.fullmatch(value):
        raise InvalidArgument("email is not a valid address", reason="INVALID_EMAIL")
    return value.lower()


def role_name(value: str, field: str = "role") -> str:
    if not ROLE_NAME_RE.fullmatch(value):
        raise InvalidArgument(
            f"{field} must match [a-z][a-z0-9_]{{1,49}}",
            reason="INVALID_ROLE_NAME",
            metadata={"field": field},
        )
    return value


def text(value: str, field: str, *, max_length: int, required: bool = False) -> str:
    """Free text: at most ``max_length`` characters, no NUL (PostgreSQL rejects it)."""
    if (required and not value.strip()) or len(value) > max_length or "\x00" in value:
        raise InvalidArgument(
            f"{field} must be {'1' if required else '0'}-{max_length} characters without NUL",
            reason="INVALID_TEXT",
            metadata={"field": field},
        )
    return value


def update_mask(paths: Iterable[str], allowed: frozenset[str]) -> frozenset[str]:
    """The requested update paths; an empty mask or an unknown path is INVALID_ARGUMENT."""
    requested = frozenset(paths)
    if not requested or not requested <= allowed:
        raise InvalidArgument(
            f"update_mask must name one or more of: {', '.join(sorted(allowed))}",
            reason="INVALID_UPDATE_MASK",
            metadata={"field": "update_mask"},
        )
    return requested


def timestamp(value: Timestamp, field: str) -> datetime:
    """A Timestamp within the range the protobuf spec allows (years 1-9999)."""
    try:
        if not 0 <= value.nanos < 1_000_000_000:
            raise ValueError(field)
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidArgument(
            f"{field} is not a valid timestamp",
            reason="INVALID_TIMESTAMP",
            metadata={"field": field},
        ) from None


def page_size(value: int) -> int:
    """0 means the default; larger than the maximum is clamped (AIP-158); negative is refused."""
    if value < 0:
        raise InvalidArgument(
            "page_size must not be negative",
            reason="INVALID_PAGE_SIZE",
            metadata={"field": "page_size"},
        )
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
