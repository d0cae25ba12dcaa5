"""Edge validation: turn request fields into checked values before any SQL runs."""

from __future__ import annotations

import re
import uuid

from docgate.errors import InvalidArgument

USERNAME_RE = re.compile(r"[a-z][a-z0-9_.-]{1,63}")
# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is not our job.
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
ROLE_NAME_RE = re.compile(r"[a-z][a-z0-9_]{1,49}")
MAX_EMAIL_LENGTH = 254


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
