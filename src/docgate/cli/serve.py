"""`docgate serve`: migrate, (dev mode) seed the demo data and print its tokens, serve."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from docgate import demo, runtime
from docgate.bootstrap import App, build_app
from docgate.cli import workers
from docgate.config import Settings
from docgate.errors import DocgateError
from docgate.principal import SYSTEM
from docgate.repositories.users import UserRepository
from docgate.server import dialable, serve_until_signalled
from docgate.tokens import TokenMinter

log = logging.getLogger(__name__)


async def run(settings: Settings) -> None:
    if settings.worker_index is not None:
        await _serve_as_worker(runtime.worker_metrics(settings))
        return
    count = workers.worker_count(settings.workers)
    if count == 1:
        settings = runtime.with_dev_metrics(settings)
    url = await runtime.migrated_database_url(settings)
    if count > 1:
        await _supervise(settings, url, count)
        return
    app = build_app(settings, url)
    if not settings.embedded:
        await serve_until_signalled(app, settings.listen)
        return
    seeded = await _seed(app)

    async def banner(address: str) -> None:
        await _print_demo(settings, app, seeded, address)

    await serve_until_signalled(app, settings.listen, on_started=banner)


async def _seed(app: App) -> bool:
    async with app.uow.transaction(SYSTEM) as session:
        return await demo.seed_if_empty(session)


async def _supervise(settings: Settings, url: str, count: int) -> None:
    """The parent of ``serve --workers N`` (docgate.cli.workers): migrated already; in dev mode
    it seeds, prints the banner once, and keeps the embedded PostgreSQL until the end."""
    log.info("%s", workers.connection_budget(settings, count))
    seeded = False
    if settings.embedded:
        app = build_app(settings, url)
        try:
            seeded = await _seed(app)
        finally:
            await app.close()
    with workers.reserved_port(settings.listen) as listen:
        port = int(listen.rpartition(":")[2])
        address = dialable(settings.listen, port)
        supervisor = workers.Supervisor(
            count,
            workers.worker_command(workers.worker_environment(settings, url, listen)),
            settings.grace_seconds,
        )

        async def started() -> None:
            log.info("docgate serving on %s (port %d, %d workers)", listen, port, count)
            if settings.embedded:
                banner_app = build_app(settings, url)
                try:
                    await _print_demo(settings, banner_app, seeded, address)
                finally:
                    await banner_app.close()

        await supervisor.run(on_started=started)
    log.info("stopped")


async def _serve_as_worker(settings: Settings) -> None:
    """One of ``serve --workers N``: serve until signalled, or until the parent is gone."""
    assert settings.database_url is not None, "the parent passes the database URL"
    app = build_app(settings, settings.database_url)
    parent = os.getppid()

    async def ready(address: str) -> None:
        print(workers.READY, flush=True)

    orphaned = asyncio.create_task(_stop_when_orphaned(parent))
    try:
        await serve_until_signalled(app, settings.listen, on_started=ready)
    finally:
        orphaned.cancel()


async def _stop_when_orphaned(parent: int) -> None:
    """A worker must not outlive its parent (a kill -9 of the parent would leave it serving
    with nobody to stop it): when the parent exits, it stops as on SIGTERM, gracefully."""
    gone = asyncio.Event()
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(parent)  # readable once the parent has exited
    loop.add_reader(pidfd, gone.set)
    try:
        await gone.wait()
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    log.warning("parent %d is gone: stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)


async def _print_demo(settings: Settings, app: App, seeded: bool, addr: str) -> None:
    minter = TokenMinter(settings)
    flags = _grpcurl_flags(settings)
    lines = ["", "docgate dev mode" + (" (demo data seeded)" if seeded else ""), ""]
    async with app.uow.transaction(SYSTEM) as session:
        repo = UserRepository(session)
        for name, role in demo.DEMO_USERS:
            try:
                user_id = await repo.find_id(name)
            except DocgateError:
                continue
            token = minter.mint(user_id, settings.token_ttl_seconds)
            lines += [f"{name} ({role}):", f"  export {name.upper()}_TOKEN={token}"]
    lines += [
        "",
        "try:",
        f"  grpcurl {flags} {addr} list",
        f'  grpcurl {flags} -H "authorization: Bearer $ALICE_TOKEN" {addr} '
        "docgate.v1.UserService/GetCurrentUser",
        f'  grpcurl {flags} -H "authorization: Bearer $CAROL_TOKEN" {addr} '
        "docgate.v1.DocumentService/ListDocuments",
        f'  grpcurl {flags} -H "authorization: Bearer $CAROL_TOKEN" {addr} '
        "docgate.v1.ProjectService/ListProjects",
        f'  grpcurl {flags} -H "authorization: Bearer $CAROL_TOKEN" -d \'{{"template": '
        f'"{demo.DEMO_TEMPLATE}", "title": "Kick-off", "values": {{"topic": "Kick-off", '
        '"date": "today", "attendees": "carol"}}\' '
        f"{addr} docgate.v1.ProjectService/CreateDocumentFromTemplate",
        "",
    ]
    print("\n".join(lines), flush=True)


def _grpcurl_flags(settings: Settings) -> str:
    """How grpcurl reaches this server: plaintext, or TLS trusting its CA (and a client
    certificate with mTLS)."""
    if not settings.tls:
        return "-plaintext"
    flags = "-cacert CA.pem"  # the CA that signed DOCGATE_TLS_CERT_FILE
    if settings.tls_client_ca_file is not None:
        flags += " -cert CLIENT.pem -key CLIENT-KEY.pem"
    return flags
