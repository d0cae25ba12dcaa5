"""JWT verification and minting (PyJWT).

The accepted algorithm is fixed by configuration, never read from the token (RFC 8725 §2.1);
`exp`, `iat` and `sub` are required; `aud`/`iss` are checked when configured.

A refused token raises `TokenRejected`: the caller learns only ``TOKEN_EXPIRED`` or
``INVALID_TOKEN`` (RFC 6750 §3.1 allows telling an expired token apart, and nothing finer: the
rest would help a forger more than a client), while ``cause`` says for the server's log what
was wrong: clock skew and forgery look the same to a client but not to an operator. No cause
ever quotes the token.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from docgate.config import Settings
from docgate.errors import Unauthenticated

GENERIC_MESSAGE = "missing or invalid credentials"
_REQUIRED = ["exp", "iat", "sub"]
EXPIRED = "token expired"


class TokenRejected(Unauthenticated):
    """A missing or unusable token. ``cause`` is for the log only, never for the caller."""

    def __init__(self, cause: str) -> None:
        reason = "TOKEN_EXPIRED" if cause == EXPIRED else "INVALID_TOKEN"
        super().__init__(GENERIC_MESSAGE, reason=reason)
        self.cause = cause


# Most specific first: PyJWT's errors form a tree (an expired token is also an invalid one).
_CAUSES: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, EXPIRED),
    (jwt.ImmatureSignatureError, "token not yet valid (nbf or iat in the future)"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidAlgorithmError, "token algorithm not accepted"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim"),
    (jwt.InvalidIssuedAtError, "malformed token (iat)"),
    (jwt.DecodeError, "malformed token (not a JWT)"),
)


def _cause(exc: Exception) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token lacks the required claim {exc.claim!r}"
    for kind, cause in _CAUSES:
        if isinstance(exc, kind):
            return cause
    if isinstance(exc, ValueError):
        return "malformed token (sub is not a user id)"
    return "malformed token"


class KeyConfigurationError(RuntimeError):
    """The settings do not give a usable key for the configured algorithm."""


def _read(path: Path | None, what: str) -> str:
    if path is None:
        raise KeyConfigurationError(f"DOCGATE_JWT_{what}_FILE is required for this algorithm")
    try:
        return path.read_text()
    except OSError as exc:
        raise KeyConfigurationError(f"cannot read {what.lower()} key file {path}: {exc}") from exc


def _key(settings: Settings, key_file: Path | None, what: str) -> str:
    """The HS256 secret (both directions), or the PEM key an asymmetric algorithm needs."""
    if settings.jwt_algorithm != "HS256":
        return _read(key_file, what)
    if not settings.jwt_secret:
        raise KeyConfigurationError("DOCGATE_JWT_SECRET is required for HS256")
    if len(settings.jwt_secret.encode()) < 32:
        raise KeyConfigurationError("DOCGATE_JWT_SECRET must be at least 32 bytes")
    return settings.jwt_secret


_PAGE_TOKEN_LABEL = b"docgate page tokens v1"


def page_token_key(settings: Settings) -> bytes:
    """The page tokens' MAC key: DOCGATE_PAGE_TOKEN_SECRET, else (HS256) derived from the JWT
    secret with a label of its own, so the JWT key itself never signs anything but JWTs and
    every process of a deployment, after any restart, agrees on it."""
    if settings.page_token_secret:
        return hashlib.sha256(settings.page_token_secret.encode()).digest()
    if settings.jwt_algorithm != "HS256":
        raise KeyConfigurationError(
            f"DOCGATE_PAGE_TOKEN_SECRET is required with {settings.jwt_algorithm}"
        )
    secret = _key(settings, None, "SECRET").encode()
    return hmac.new(secret, _PAGE_TOKEN_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class _Verified:
    user_id: uuid.UUID
    not_before: float
    expires: float


class TokenVerifier:
    """Verifies bearer tokens.

    A token whose signature and claims have been verified is remembered (by its exact text, so
    a token that differs in any byte is verified afresh) until it expires: callers send the same
    token on every call, and re-checking an HMAC or RSA signature that cannot have changed was
    the largest single CPU cost of an authenticated call. Expiry is still checked on every
    call. Whether the user still exists and is active is not a token question: the interceptor
    reads that from the database on every call.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        self._clock = clock
        self._cache: dict[str, _Verified] = {}
        self._cache_size = cache_size
        self._algorithm = settings.jwt_algorithm
        self._key = _key(settings, settings.jwt_public_key_file, "PUBLIC_KEY")
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_seconds

    def verify(self, token: str) -> uuid.UUID:
        """Return the user id in ``sub``; raise TokenRejected for anything else."""
        known = self._cache.get(token)
        if known is None:
            known = self._decode(token)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()  # bounded; a cold cache only costs re-verification
            self._cache[token] = known
        now = self._clock()
        if now >= known.expires + self._leeway:
            self._cache.pop(token, None)
            raise TokenRejected(EXPIRED)
        if now < known.not_before - self._leeway:
            self._cache.pop(token, None)
            raise TokenRejected("token not yet valid (nbf or iat in the future)")
        return known.user_id

    def _decode(self, token: str) -> _Verified:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED, "strict_aud": self._audience is not None},
            )
            _numeric_date(claims["iat"])
            return _Verified(
                user_id=_canonical_user_id(claims["sub"]),
                not_before=_numeric_date(claims.get("nbf", float("-inf"))),
                expires=_numeric_date(claims["exp"]),
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenRejected(_cause(exc)) from exc


def _numeric_date(value: Any) -> float:
    """RFC 7519 NumericDate: a JSON number, never a string or a boolean."""
    if type(value) not in (int, float):
        raise ValueError("not a NumericDate")
    return float(value)


def _canonical_user_id(value: Any) -> uuid.UUID:
    """``sub`` exactly as docgate mints it: a lower-case hyphenated UUID (StringOrURI values
    compare case-sensitively; braces, urn:uuid: and upper case are other strings)."""
    if not isinstance(value, str):
        raise ValueError("sub is not a string")
    user_id = uuid.UUID(value)
    if str(user_id) != value:
        raise ValueError("sub is not a canonical UUID")
    return user_id


class TokenMinter:
    """Signs tokens for `docgate token` and the demo set-up."""

    def __init__(self, settings: Settings) -> None:
        self._algorithm = settings.jwt_algorithm
        self._key = _key(settings, settings.jwt_private_key_file, "PRIVATE_KEY")
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer

    def mint(self, user_id: uuid.UUID, ttl_seconds: int) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"sub": str(user_id), "iat": now, "exp": now + ttl_seconds}
        if self._audience:
            claims["aud"] = self._audience
        if self._issuer:
            claims["iss"] = self._issuer
        return jwt.encode(claims, self._key, algorithm=self._algorithm)
