"""Settings, read once from DOCGATE_* environment variables by the composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

JwtAlgorithm = Literal["HS256", "RS256", "ES256"]


class Settings(BaseSettings):
    """Every knob docgate has. README.md lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="DOCGATE_", extra="ignore")

    # Database. Unset: an embedded PostgreSQL in data_dir (dev mode, demo data seeded once).
    database_url: str | None = None
    data_dir: Path = Path(".docgate")
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    pool_recycle: int = Field(default=1800, ge=-1)
    # Off, as in the seed: a ping is an extra round trip on every RPC. A connection that died
    # while pooled fails its first statement, that call answers UNAVAILABLE (retryable), and
    # SQLAlchemy then invalidates the whole pool, so one call pays for a database restart
    # (tests/e2e/test_faults.py). Turn it on where idle connections are cut silently.
    pool_pre_ping: bool = False
    # Seconds to wait for a pooled connection; kept below typical RPC deadlines so an
    # exhausted pool answers UNAVAILABLE instead of a silent DEADLINE_EXCEEDED.
    pool_timeout: float = Field(default=5.0, gt=0)
    # Server-side per-statement limit in milliseconds (0 = none).
    statement_timeout_ms: int = Field(default=30_000, ge=0)

    # Server.
    listen: str = "127.0.0.1:50051"
    grace_seconds: float = Field(default=10.0, ge=0)
    health_interval_seconds: float = Field(default=2.0, gt=0)
    max_concurrent_rpcs: int | None = Field(default=None, ge=1)

    # Tokens. HS256 uses jwt_secret; RS256/ES256 verify with jwt_public_key_file and mint
    # (docgate token) with jwt_private_key_file.
    jwt_algorithm: JwtAlgorithm = "HS256"
    jwt_secret: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_private_key_file: Path | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    token_ttl_seconds: int = Field(default=3600, ge=1)
    # Key of the page tokens' MAC, shared by every process of a deployment. Unset with HS256:
    # derived from jwt_secret under a label of its own; RS256/ES256 need it set.
    page_token_secret: str | None = Field(default=None, min_length=32)

    # Documents.
    max_content_bytes: int = Field(default=1024 * 1024, ge=1)

    @property
    def embedded(self) -> bool:
        return self.database_url is None
