"""Who a user is (active, roles), remembered per process and forgotten the moment it changes.

The door (docgate.edge.auth) asks ``PrincipalCache.load(conn, user_id)`` on every call instead
of reading users/user_roles/roles each time. The rules that keep revocation exact:

- **Only while listening.** A dedicated connection LISTENs on ``docgate_principals``
  (docgate.db.listener); migration 0008_principal_notify makes PostgreSQL NOTIFY it, on commit,
  of every change to users, user_roles and roles, whoever makes it. Until LISTEN is confirmed,
  and from the instant that connection is lost until it is back, the cache is **bypassed**:
  every call reads the database, exactly as without a cache (and the cache is emptied).
- **Forgotten on notification**: a notification drops that user (payload = user id) or
  everyone ('*': a role renamed or deleted, a TRUNCATE). Other processes see a revocation as
  soon as its NOTIFY arrives (sub-millisecond on a quiet box; bounded by the event loop's lag).
- **Forgotten synchronously here**: a write transaction of this process that changed one of
  those tables (seen by a ``do_orm_execute`` listener on the session class, `install`) empties
  the cache as soon as it commits (UnitOfWork's ``after_commit``), so the very next call in the
  revoking process reads the new state without waiting for its own notification.
- **No stale store**: a read that was in flight while anything was invalidated (or the listener
  went down or came up) is used for its own call but not stored: every invalidation bumps a
  generation, and a read stores only when the generation is what it was when the read began.
- Only active users are kept (unknown and inactive ones are read every time), at most
  ``max_entries`` (when full, everything is dropped).

Write transactions still re-read the caller FOR SHARE (repositories.principals.confirm_caller):
the cache decides who gets in, never what a write may do.

For other users of identity (for example reads served by a replica): call ``load`` with a
connection to the *primary* — the cache and its listener must follow the database that the
changes are committed to. ``listening`` says whether entries are being served at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from docgate.db.listener import Listener
from docgate.principal import Principal
from docgate.repositories.principals import load_principal

CHANNEL = "docgate_principals"
EVERYONE = "*"
PRINCIPAL_TABLES = frozenset({"users", "user_roles", "roles"})
_CHANGED = "docgate.principals_changed"  # session.info key
_INSTALLED = "_docgate_principal_changes_installed"


@dataclass
class CacheStats:
    """Counters for tests and operators: calls served from memory, read and stored, read
    because the cache was bypassed (not listening), and invalidations by cause."""

    hits: int = 0
    misses: int = 0
    bypassed: int = 0
    notifications: int = 0
    local_invalidations: int = 0


class PrincipalCache:
    def __init__(self, url: str, *, enabled: bool = True, max_entries: int = 100_000) -> None:
        self._url = url
        self.enabled = enabled
        self.max_entries = max_entries
        self._entries: dict[uuid.UUID, Principal] = {}
        self._generation = 0
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self.listener = Listener(url, CHANNEL, self._notified, self._listener_state)
        self.stats = CacheStats()
        # Set on every change of state or invalidation; tests wait on them (never on time).
        self.changed = asyncio.Condition()

    @property
    def listening(self) -> bool:
        """True while entries are served (LISTEN confirmed and the connection up)."""
        return self._listening

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, re-checked at every invalidation or change of
        the listener's state (tests bound it with asyncio.wait_for)."""
        async with self.changed:
            await self.changed.wait_for(predicate)

    def start(self) -> None:
        """Start listening (idempotent; needs a running event loop)."""
        if self.enabled and self._task is None:
            # A context of its own: started from inside a call, it must not carry that call's
            # request id or caller into its log lines for the rest of its life.
            self._task = asyncio.get_running_loop().create_task(
                self.listener.run(),
                name="docgate-principal-listener",
                context=contextvars.Context(),
            )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._listener_state(False)

    async def load(self, conn: AsyncConnection, user_id: uuid.UUID) -> Principal | None:
        """The active user ``user_id`` as a Principal, or None (unknown or deactivated)."""
        if not self._listening:
            self.start()
            self.stats.bypassed += 1
            return await load_principal(conn, user_id)
        found = self._entries.get(user_id)
        if found is not None:
            self.stats.hits += 1
            return found
        self.stats.misses += 1
        generation = self._generation
        principal = await load_principal(conn, user_id)
        if principal is not None and self._listening and generation == self._generation:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[user_id] = principal
        return principal

    def invalidate(self, user_id: uuid.UUID | None = None) -> None:
        """Forget ``user_id`` (None: everyone); reads in flight will not be stored."""
        self._generation += 1
        if user_id is None:
            self._entries.clear()
        else:
            self._entries.pop(user_id, None)
        self._signal()

    def after_commit(self, session: AsyncSession) -> None:
        """UnitOfWork's hook: a committed transaction that changed principals empties the
        cache before the RPC that made it returns."""
        if session.info.pop(_CHANGED, False):
            self.stats.local_invalidations += 1
            self.invalidate()

    def _notified(self, payload: str) -> None:
        self.stats.notifications += 1
        user_id = None
        if payload != EVERYONE:
            try:
                user_id = uuid.UUID(payload)
            except ValueError:
                user_id = None  # not ours to understand: forget everyone
        self.invalidate(user_id)

    def _listener_state(self, up: bool) -> None:
        self._listening = up and self.enabled
        self.invalidate()

    def _signal(self) -> None:
        async def notify_all() -> None:
            async with self.changed:
                self.changed.notify_all()

        with contextlib.suppress(RuntimeError):  # no running loop (closing)
            asyncio.get_running_loop().create_task(notify_all())


def _note_principal_changes(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in PRINCIPAL_TABLES:
        state.session.info[_CHANGED] = True


def install(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """Mark every session of ``session_factory`` whose statements change users, user_roles
    or roles (read back by `PrincipalCache.after_commit`)."""
    session_class: type[Session] = session_factory.kw["sync_session_class"]
    if not session_class.__dict__.get(_INSTALLED, False):
        event.listen(session_class, "do_orm_execute", _note_principal_changes)
        setattr(session_class, _INSTALLED, True)
