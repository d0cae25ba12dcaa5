"""Engine and session factory, built once by the composition root from Settings."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from docgate.config import Settings
from docgate.db.replicas import Replica


def async_url(url: str) -> URL:
    """Accept postgres:// and postgresql:// URLs and pin the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ArgumentError(f"unsupported database URL scheme {parsed.drivername!r}: use postgresql://")


def pooler_connect_args(settings: Settings) -> dict[str, object]:
    """What asyncpg needs behind PgBouncer in transaction mode (DOCGATE_DATABASE_POOLER):
    the pooler may hand each transaction (each autocommit statement) to another server
    connection, so nothing may outlive one. No statement cache, neither asyncpg's (docgate's
    prepared.py statements then run unnamed) nor SQLAlchemy's, whose statements get the unnamed
    name too: Parse, Describe, Bind and Execute of one statement go out before one Sync, so
    they reach one server. Startup parameters other than application_name are refused by
    PgBouncer, so the statement timeout must be set on the role (docs/scaling.md)."""
    if settings.database_pooler != "transaction":
        return {}
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": lambda: "",
    }


_REPLICA_CONNECT_TIMEOUT = 2.0


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    server_settings = {"application_name": "docgate"}
    if settings.statement_timeout_ms and settings.database_pooler == "none":
        server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
    return create_async_engine(
        async_url(url),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_recycle=settings.pool_recycle,
        pool_pre_ping=settings.pool_pre_ping,
        pool_timeout=settings.pool_timeout,
        # Transactions are explicit (UnitOfWork.transaction); see docgate.db.uow for why.
        isolation_level="AUTOCOMMIT",
        # Statement parameters are request data (document content, e-mail addresses): never in
        # an exception's text, so never in a log line.
        hide_parameters=True,
        connect_args={"server_settings": server_settings, **pooler_connect_args(settings)},
    )


def create_health_engine(
    url: str, settings: Settings, application_name: str = "docgate-health"
) -> AsyncEngine:
    """The health check's own connection: deciding "database down" must not wait in the
    queue of the shared pool, or a busy pool (RPCs waiting on locks) would read as an outage
    and take every replica out of its balancer at once. The audit sealer's connection is one
    like it (``application_name`` docgate-sealer, docgate.db.sealer)."""
    return create_async_engine(
        async_url(url),
        pool_size=1,
        max_overflow=0,
        pool_recycle=settings.pool_recycle,
        pool_pre_ping=True,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        connect_args={
            "server_settings": {"application_name": application_name},
            **pooler_connect_args(settings),
        },
    )


def create_replica(url: str, settings: Settings) -> Replica:
    """A read replica's engine: the main pool's settings, but always pre-pinged (a standby that
    restarted or was stopped must cost a reconnect or a fall back to the primary, not a
    failed read) and a short connect timeout (a standby that is down must not hold a read)."""
    server_settings = {"application_name": "docgate-replica"}
    if settings.statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
    engine = create_async_engine(
        async_url(url),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_recycle=settings.pool_recycle,
        pool_pre_ping=True,
        pool_timeout=settings.pool_timeout,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        connect_args={"server_settings": server_settings, "timeout": _REPLICA_CONNECT_TIMEOUT},
    )
    return Replica(make_url(url).render_as_string(hide_password=True), engine)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions of a Session class of this factory's own, so that the listeners the composition
    root installs on it (docgate.db.filtering) belong to this application alone."""
    session_class = type("DocgateSession", (Session,), {})
    return async_sessionmaker(
        engine, sync_session_class=session_class, expire_on_commit=False, autoflush=False
    )
