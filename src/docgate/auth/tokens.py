"""JWT verification and minting (PyJWT).

The accepted algorithm is fixed by configuration, never read from the token (RFC 8725 §2.1);
`exp`, `iat` and `sub` are required; `aud`/`iss` are checked when configured.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import jwt

from docgate.config import Settings
from docgate.errors import Unauthenticated

GENERIC_MESSAGE = "missing or invalid credentials"
_REQUIRED = ["exp", "iat", "sub"]


class KeyConfigurationError(RuntimeError):
    """The settings do not give a usable key for the configured algorithm."""


def _read(path: Path | None, what: str) -> str:
    if path is None:
        raise KeyConfigurationError(f"DOCGATE_JWT_{what}_FILE is required for this algorithm")
    try:
        return path.read_text()
    except OSError as exc:
        raise KeyConfigurationError(f"cannot read {what.lower()} key file {path}: {exc}") from exc


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._algorithm = settings.jwt_algorithm
        if self._algorithm == "HS256":
            if not settings.jwt_secret:
                raise KeyConfigurationError("DOCGATE_JWT_SECRET is required for HS256")
            if len(settings.jwt_secret.encode()) < 32:
                raise KeyConfigurationError("DOCGATE_JWT_SECRET must be at least 32 bytes")
            self._key: Any = settings.jwt_secret
        else:
            self._key = _read(settings.jwt_public_key_file, "PUBLIC_KEY")
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_seconds

    def verify(self, token: str) -> uuid.UUID:
        """Return the user id in ``sub``; raise Unauthenticated for anything else."""
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
            return uuid.UUID(str(claims["sub"]))
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise Unauthenticated(GENERIC_MESSAGE) from exc


class TokenMinter:
    """Signs tokens for `docgate token` and the demo set-up."""

    def __init__(self, settings: Settings) -> None:
        self._algorithm = settings.jwt_algorithm
        if self._algorithm == "HS256":
            if not settings.jwt_secret:
                raise KeyConfigurationError("DOCGATE_JWT_SECRET is required for HS256")
            self._key: Any = settings.jwt_secret
        else:
            self._key = _read(settings.jwt_private_key_file, "PRIVATE_KEY")
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
