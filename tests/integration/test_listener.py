"""The do_orm_execute listener is the safety net: ORM queries written with no filter at all
still see only what the caller's roles allow."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import delete, func, select, update

from docgate.bootstrap import App
from docgate.db.filtering import SHOW_DELETED
from docgate.db.models import Document
from docgate.errors import PermissionDenied
from docgate.principal import SYSTEM, Principal, acting_as
from tests.support import make_user


def oracle_visible(principal: Principal | None, doc: Document, show_deleted: bool = False) -> bool:
    if principal is None:
        return False
    if doc.is_deleted:
        return show_deleted and principal.is_admin
    return (
        principal.is_admin
        or doc.owner_id == principal.user_id
        or (doc.is_public and (principal.is_paid or not doc.requires_paid_access))
    )


@pytest.fixture(scope="module")
async def world(app: App) -> tuple[list[Principal], list[Document]]:
    """Two owners with every flag combination each, plus callers of every role shape."""
    owners = [await make_user(app, "free_user"), await make_user(app, "paid_user")]
    marker = uuid.uuid4().hex
    docs = [
        Document(
            title=f"{marker}-{i}",
            owner_id=owner.id,
            is_public=pub,
            requires_paid_access=paid,
            is_deleted=dele,
        )
        for i, (owner, (pub, paid, dele)) in enumerate(
            itertools.product(owners, itertools.product((False, True), repeat=3))
        )
    ]
    with acting_as(SYSTEM):
        async with app.uow.transaction() as session:
            session.add_all(docs)
    callers = [Principal(o.id, o.username, frozenset(o.roles)) for o in owners] + [
        Principal(uuid.uuid4(), "x", frozenset(roles))
        for roles in ((), ("admin",), ("paid_user",), ("free_user",), ("custom",),
                      ("free_user", "paid_user"))
    ]  # fmt: skip
    return callers, docs


async def _titles(
    app: App, principal: Principal | None, marker_docs: list[Document], **opts: bool
) -> set[str]:
    prefix = marker_docs[0].title.rsplit("-", 1)[0]
    with acting_as(principal):
        async with app.uow.transaction() as session:
            stmt = select(Document.title).where(Document.title.startswith(prefix))
            return set((await session.scalars(stmt.execution_options(**opts))).all())


async def test_unfiltered_orm_select_sees_only_visible(app: App, world: tuple) -> None:
    callers, docs = world
    for principal in [None, *callers]:
        expected = {d.title for d in docs if oracle_visible(principal, d)}
        assert await _titles(app, principal, docs) == expected, principal


async def test_admin_show_deleted_sees_everything(app: App, world: tuple) -> None:
    callers, docs = world
    admin = next(p for p in callers if p.is_admin)
    got = await _titles(app, admin, docs, **{SHOW_DELETED: True})
    assert got == {d.title for d in docs}


async def test_non_admin_show_deleted_is_refused(app: App, world: tuple) -> None:
    callers, docs = world
    with pytest.raises(PermissionDenied):
        await _titles(app, callers[0], docs, **{SHOW_DELETED: True})


async def test_counts_and_bulk_updates_are_filtered(app: App, world: tuple) -> None:
    callers, docs = world
    free = next(p for p in callers if p.roles == frozenset({"free_user"}) and p.username == "x")
    prefix = docs[0].title.rsplit("-", 1)[0]
    visible = sum(oracle_visible(free, d) for d in docs)
    with acting_as(free):
        async with app.uow.transaction() as session:
            count = await session.scalar(
                select(func.count()).select_from(Document).where(Document.title.startswith(prefix))
            )
            assert count == visible
            result = await session.execute(
                update(Document)
                .where(Document.title.startswith(prefix))
                .values(content="touched")
                .execution_options(synchronize_session=False)
            )
            assert result.rowcount == visible  # type: ignore[attr-defined]
            result = await session.execute(
                delete(Document)
                .where(Document.title.startswith(prefix), Document.is_public.is_(False))
                .execution_options(synchronize_session=False)
            )
            # A caller who owns nothing sees nothing private, so can delete nothing private.
            assert result.rowcount == 0  # type: ignore[attr-defined]


def test_every_new_session_factory_gets_the_listener() -> None:
    """Each app's Session class is its own and short-lived in tests; one built where a
    collected one lived must still be filtered (SQLAlchemy's event.contains is keyed by id()
    and said yes for such a class, which then ran every ORM statement unfiltered)."""
    import gc

    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine

    from docgate.db.engine import create_session_factory
    from docgate.db.filtering import _apply_document_policy, install_document_policy

    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    for _ in range(50):
        factory = create_session_factory(engine)
        install_document_policy(factory)
        install_document_policy(factory)  # twice is once
        session_class = factory.kw["sync_session_class"]
        listeners = list(session_class().dispatch.do_orm_execute)
        assert listeners.count(_apply_document_policy) == 1
        assert event.contains(session_class, "do_orm_execute", _apply_document_policy)
        del factory, session_class, listeners
        gc.collect()
