"""Opaque keyset page tokens for ListDocuments and SearchDocuments.

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
from typing import Any, Final

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
    return InvalidArgument(message, reason="INVALID_PAGE_TOKEN")


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
