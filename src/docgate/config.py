"""Settings, read once from DOCGATE_* environment variables by the composition root.

Each field's description is what `docgate serve --help` prints beside its variable and
default (docgate.cli.settings_help), and README's table says the same; a test keeps the two
in step (tests/e2e/test_settings.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

JwtAlgorithm = Literal["HS256", "RS256", "ES256"]
LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
ENV_PREFIX = "DOCGATE_"
# Room for the rest of a message around the largest content or answer: titles, metadata,
# protobuf framing.
MESSAGE_OVERHEAD_BYTES = 64 * 1024


class Settings(BaseSettings):
    """Every knob docgate has."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # Database. Unset: an embedded PostgreSQL in data_dir (dev mode, demo data seeded once).
    database_url: str | None = Field(
        default=None,
        description="postgresql://user:pass@host:port/db; unset: dev mode (embedded "
        "PostgreSQL in the data dir, generated secret, demo data)",
    )
    data_dir: Path = Field(
        default=Path(".docgate"),
        description="dev mode: embedded PostgreSQL data and the generated secret",
    )
    pool_size: int = Field(default=10, ge=1, description="connections kept in the pool")
    max_overflow: int = Field(
        default=10, ge=0, description="connections opened beyond the pool size under load"
    )
    pool_recycle: int = Field(
        default=1800, ge=-1, description="seconds before a pooled connection is replaced"
    )
    # Off, as in the seed: a ping is an extra round trip on every RPC. A connection that died
    # while pooled fails its first statement, that call answers UNAVAILABLE (retryable), and
    # SQLAlchemy then invalidates the whole pool, so one call pays for a database restart
    # (tests/e2e/test_faults.py). Turn it on where idle connections are cut silently.
    pool_pre_ping: bool = Field(
        default=False, description="ping each connection on checkout (one more round trip)"
    )
    # Kept below typical RPC deadlines so an exhausted pool answers UNAVAILABLE instead of a
    # silent DEADLINE_EXCEEDED.
    pool_timeout: float = Field(
        default=5.0, gt=0, description="seconds to wait for a connection, then UNAVAILABLE"
    )
    statement_timeout_ms: int = Field(
        default=30_000, ge=0, description="server-side statement timeout in ms (0 = none)"
    )

    # Server.
    listen: str = Field(
        default="127.0.0.1:50051",
        description="gRPC listen address HOST:PORT; port 0 picks a free one (logged); "
        ":PORT or [::]:PORT listen on every interface",
    )
    grace_seconds: float = Field(
        default=10.0, ge=0, description="on SIGTERM/SIGINT, how long in-flight calls may finish"
    )
    health_interval_seconds: float = Field(
        default=2.0, gt=0, description="how often health re-checks the database and its schema"
    )
    # The bound on the server's total work: with max_response_bytes, memory held by answers
    # is at most about max_concurrent_rpcs x max_response_bytes.
    max_concurrent_rpcs: int | None = Field(
        default=None,
        ge=1,
        description="calls in flight at once (bounds total work); above it new calls answer "
        "RESOURCE_EXHAUSTED",
    )

    # Tokens. HS256 uses jwt_secret; RS256/ES256 verify with jwt_public_key_file and mint
    # (docgate token) with jwt_private_key_file.
    jwt_algorithm: JwtAlgorithm = Field(
        default="HS256", description="HS256, RS256 or ES256: the only algorithm accepted"
    )
    jwt_secret: str | None = Field(
        default=None, description="HS256 key (at least 32 bytes); generated in dev mode"
    )
    jwt_public_key_file: Path | None = Field(
        default=None, description="RS256/ES256 verification key (PEM file)"
    )
    jwt_private_key_file: Path | None = Field(
        default=None, description="RS256/ES256 signing key for `docgate token` (PEM file)"
    )
    jwt_audience: str | None = Field(
        default=None, description="when set, tokens must carry exactly this aud"
    )
    jwt_issuer: str | None = Field(default=None, description="when set, tokens must carry this iss")
    jwt_leeway_seconds: int = Field(
        default=30, ge=0, le=300, description="clock skew allowed on exp, iat and nbf"
    )
    token_ttl_seconds: int = Field(
        default=3600, ge=1, description="lifetime of tokens minted by `docgate token`"
    )
    # Key of the page tokens' MAC, shared by every process of a deployment. Unset with HS256:
    # derived from jwt_secret under a label of its own; RS256/ES256 need it set.
    page_token_secret: str | None = Field(
        default=None,
        min_length=32,
        description="page token MAC key; unset: derived from the HS256 secret",
    )

    # Documents.
    max_content_bytes: int = Field(
        default=1024 * 1024, ge=1, description="largest document content accepted (UTF-8 bytes)"
    )

    max_response_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        description="largest answer built (bytes): pages end early, BatchGet over it is "
        "RESOURCE_EXHAUSTED",
    )

    # Transport (docgate.edge.transport): TLS, message size limits, keepalive, connection age.
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain to serve TLS with (with DOCGATE_TLS_KEY_FILE); "
        "re-read when the file changes",
    )
    tls_key_file: Path | None = Field(
        default=None, description="PEM private key of DOCGATE_TLS_CERT_FILE"
    )
    tls_client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle: when set, clients must present a certificate it signed (mTLS)",
    )
    # Above the largest request a valid call sends (content plus title, metadata, framing).
    max_receive_message_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        description="largest request message accepted (bytes); larger ones answer "
        "RESOURCE_EXHAUSTED before any handler runs",
    )
    # Above the largest answer the server builds: max_response_bytes is an estimate made
    # before building, and GetDocument returns a whole document.
    max_send_message_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=64 * 1024,
        description="largest answer message sent (bytes); larger ones fail RESOURCE_EXHAUSTED",
    )
    keepalive_time_seconds: float = Field(
        default=120.0,
        gt=0,
        description="the server pings an idle connection this often to find dead peers",
    )
    keepalive_timeout_seconds: float = Field(
        default=20.0, gt=0, description="a ping unanswered this long closes the connection"
    )
    keepalive_min_ping_interval_seconds: float = Field(
        default=10.0,
        ge=0,
        description="clients pinging more often than this are sent GOAWAY (too_many_pings)",
    )
    max_connection_age_seconds: float = Field(
        default=600.0,
        gt=0,
        description="a connection older than this is sent GOAWAY (clients reconnect, so "
        "load balancers rebalance)",
    )
    max_connection_age_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="how long calls in flight on an aged-out connection may still finish",
    )

    @model_validator(mode="after")
    def _transport_consistent(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("DOCGATE_TLS_CERT_FILE and DOCGATE_TLS_KEY_FILE go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("DOCGATE_TLS_CLIENT_CA_FILE needs DOCGATE_TLS_CERT_FILE")
        if self.max_receive_message_bytes < self.max_content_bytes + MESSAGE_OVERHEAD_BYTES:
            raise ValueError(
                "DOCGATE_MAX_RECEIVE_MESSAGE_BYTES must be at least DOCGATE_MAX_CONTENT_BYTES "
                f"+ {MESSAGE_OVERHEAD_BYTES}"
            )
        largest = max(self.max_content_bytes, self.max_response_bytes)
        if self.max_send_message_bytes < largest + MESSAGE_OVERHEAD_BYTES:
            raise ValueError(
                "DOCGATE_MAX_SEND_MESSAGE_BYTES must be at least the larger of DOCGATE_MAX_"
                f"CONTENT_BYTES and DOCGATE_MAX_RESPONSE_BYTES + {MESSAGE_OVERHEAD_BYTES}"
            )
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    # Observability (docs/operations.md, "Metrics, logs and traces").
    metrics_listen: str | None = Field(
        default=None,
        description="HOST:PORT serving Prometheus /metrics; unset: off (dev mode: 127.0.0.1:9464)",
    )
    log_format: LogFormat = Field(
        default="text", description="text, or json (one JSON object per line)"
    )
    log_level: LogLevel = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    access_log: bool = Field(
        default=True, description="one INFO record per call on the docgate.access logger"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    # The door's cache of callers (docgate.repositories.principal_cache): used only while its
    # LISTEN connection is confirmed; off = read the caller's roles on every call.
    principal_cache: bool = Field(
        default=True,
        description="on|off: remember callers' roles per process, forgotten on every change "
        "(PostgreSQL LISTEN/NOTIFY); bypassed while not listening",
    )

    # Read replicas (docgate.db.replicas): streaming standbys of database_url.
    database_read_urls: str | None = Field(
        default=None,
        description="comma-separated postgresql:// URLs of streaming replicas; read-only RPCs "
        "go to them round robin (unset: every call on database_url)",
    )
    replica_max_lag_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a replica further behind the primary than this is skipped (reads go to "
        "the primary)",
    )

    @property
    def read_urls(self) -> list[str]:
        urls = (self.database_read_urls or "").split(",")
        return [url.strip() for url in urls if url.strip()]

    # Scaling (docs/scaling.md).
    workers: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default=1,
        description="serve: worker processes sharing the listen port (SO_REUSEPORT); auto = "
        "one per CPU; each has its own pool",
    )
    worker_index: int | None = Field(
        default=None,
        ge=0,
        description="set by serve for each of its workers (0..N-1), never by hand: sends "
        "x-docgate-worker and offsets per-worker ports",
    )
    database_pooler: Literal["none", "transaction"] = Field(
        default="none",
        description="transaction: safe behind PgBouncer transaction pooling (no server-side "
        "prepared statements kept, no session settings)",
    )

    @property
    def embedded(self) -> bool:
        return self.database_url is None
