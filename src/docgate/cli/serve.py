"""`docgate serve`: migrate, (dev mode) seed the demo data and print its tokens, serve."""

from __future__ import annotations

from docgate import demo, runtime
from docgate.bootstrap import App, build_app
from docgate.config import Settings
from docgate.errors import DocgateError
from docgate.principal import SYSTEM
from docgate.repositories.users import UserRepository
from docgate.server import serve_until_signalled
from docgate.tokens import TokenMinter


async def run(settings: Settings) -> None:
    settings = runtime.with_dev_metrics(settings)
    url = await runtime.migrated_database_url(settings)
    app = build_app(settings, url)
    if not settings.embedded:
        await serve_until_signalled(app, settings.listen)
        return
    async with app.uow.transaction(SYSTEM) as session:
        seeded = await demo.seed_if_empty(session)

    async def banner(address: str) -> None:
        await _print_demo(settings, app, seeded, address)

    await serve_until_signalled(app, settings.listen, on_started=banner)


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
