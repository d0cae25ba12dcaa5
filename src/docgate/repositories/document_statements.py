"""Every SQL statement the document repository reads with, built once per shape and cached.

Hot reads are Core statements on the documents table, compiled once and run on the driver (no
ORM identity map, no listener, records mapped straight to protobuf). Their WHERE clause is the
caller's visibility predicate from docgate.policy — the same rule the ORM listener applies to
ORM statements — with the caller's id left as a bind parameter. A shape is (predicate, order,
which filters are present, first page or not); every value — the caller's id, filter values,
the keyset bound, the limit, the search text — is a named bind parameter supplied at
execution. Building and compiling a statement costs more than a keyset page query at any table
size, so the hot path only binds values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

import asyncpg
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList, False_, True_

from docgate import policy
from docgate.db.models import Document, Role, UserRole
from docgate.db.prepared import PreparedQuery, connection_of
from docgate.principal import Principal

DOCUMENTS: Final[Table] = Document.__table__  # type: ignore[assignment]
COLUMNS: Final[Any] = DOCUMENTS.c
# Everything mapping.document needs; never the deferred `search` vector.
READ_COLUMNS: Final = (
    COLUMNS.id,
    COLUMNS.title,
    COLUMNS.content,
    COLUMNS.owner_id,
    COLUMNS.project_id,
    COLUMNS.is_public,
    COLUMNS.requires_paid_access,
    COLUMNS.create_time,
    COLUMNS.update_time,
    COLUMNS.delete_time,
    COLUMNS.version,
)
# The same columns as ORM attributes, for RETURNING from ORM (listener-filtered) writes.
ORM_READ_COLUMNS: Final = tuple(getattr(Document, column.key) for column in READ_COLUMNS)

# order_by → (column, descending). The id column breaks ties in the same direction, so each
# order is one backward or forward scan of a (column, id) index.
ORDER_BY: Final[Mapping[str, tuple[str, bool]]] = {
    "create_time desc": ("create_time", True),
    "create_time": ("create_time", False),
    "create_time asc": ("create_time", False),
    "update_time desc": ("update_time", True),
    "title": ("title", False),
    "title asc": ("title", False),
}
DEFAULT_ORDER_BY: Final = "create_time desc"

# Bind parameter names (the keys of the execution parameters).
CALLER_ID: Final = bindparam("caller_id", type_=UUID(as_uuid=True))
LIMIT: Final = "limit"
AFTER_VALUE: Final = "after_value"
AFTER_ID: Final = "after_id"
QUERY: Final = "query"
BUDGET: Final = "budget"
# A bound on what a Document holds besides title and content (ids, flags, etag, timestamps,
# the tags and lengths of every field): about 200 bytes serialized.
ROW_OVERHEAD: Final = 256
FILTERS: Final = ("owner_id", "project_id", "is_public", "requires_paid_access", "owner_role")


def visible_to(principal: Principal, *, show_deleted: bool = False) -> ColumnElement[bool]:
    """The caller's visibility predicate on the documents table, with the caller's id left as
    the CALLER_ID bind parameter; PermissionDenied when a non-admin asks for deleted ones.

    Built by docgate.policy, once per (predicate function, audience): the function is looked up
    on the policy module at call time and is part of the cache key, so replacing it (tests do)
    takes effect at once.
    """
    who = policy.audience(principal, show_deleted=show_deleted)
    return _predicate(policy.document_arms, who)


def visible_arms(principal: Principal, *, show_deleted: bool = False) -> Arms:
    """The same predicate as `visible_to`, as policy.document_arms's disjoint clauses (their
    OR is the predicate): page and count statements run one UNION ALL branch per clause."""
    who = policy.audience(principal, show_deleted=show_deleted)
    return _arms(policy.document_arms, who)


Arms = tuple[ColumnElement[bool], ...]


@lru_cache(maxsize=64)
def _arms(build: Callable[[policy.Audience, Any, Any], Arms], who: policy.Audience) -> Arms:
    return build(who, COLUMNS, CALLER_ID)


@lru_cache(maxsize=64)
def _predicate(
    build: Callable[[policy.Audience, Any, Any], Arms], who: policy.Audience
) -> ColumnElement[bool]:
    arms = _arms(build, who)
    return arms[0] if len(arms) == 1 else or_(*arms)


class DocumentQuery:
    """A read statement run as a docgate.db.prepared.PreparedQuery (compiled once, executed on
    asyncpg). The caller's id is bound when the statement uses it (admins' predicates do not);
    values the statement has no parameter for are dropped (a constant predicate can make
    SQLAlchemy fold others away), and a missing one still raises."""

    def __init__(self, statement: Select[Any]) -> None:
        self._query = PreparedQuery(statement)
        self._names = frozenset(statement.compile().params)

    async def fetch(
        self, session: AsyncSession, principal: Principal, **values: Any
    ) -> Sequence[asyncpg.Record]:
        values[CALLER_ID.key] = principal.user_id
        params = {name: value for name, value in values.items() if name in self._names}
        return await self._query.fetch(await connection_of(session), **params)

    async def estimate(self, session: AsyncSession, principal: Principal, **values: Any) -> int:
        """The planner's estimate of how many rows the statement returns (EXPLAIN, not run)."""
        values[CALLER_ID.key] = principal.user_id
        params = {name: value for name, value in values.items() if name in self._names}
        return await self._query.estimate(await connection_of(session), **params)


@lru_cache(maxsize=64)
def get_one(visible: ColumnElement[bool]) -> DocumentQuery:
    return DocumentQuery(select(*READ_COLUMNS).where(COLUMNS.id == bindparam("doc_id"), visible))


@lru_cache(maxsize=64)
def get_many(visible: ColumnElement[bool]) -> DocumentQuery:
    ids = bindparam("doc_ids", type_=ARRAY(UUID(as_uuid=True)))
    return DocumentQuery(select(*READ_COLUMNS).where(COLUMNS.id == any_(ids), visible))


@lru_cache(maxsize=64)
def sizes_of_many(visible: ColumnElement[bool]) -> DocumentQuery:
    """id and the stored byte lengths of title and content, without reading the content:
    octet_length of a stored (toasted) text is read from its header."""
    ids = bindparam("doc_ids", type_=ARRAY(UUID(as_uuid=True)))
    lengths = (
        COLUMNS.id,
        func.octet_length(COLUMNS.title).label("title_bytes"),
        func.octet_length(COLUMNS.content).label("content_bytes"),
    )
    return DocumentQuery(select(*lengths).where(COLUMNS.id == any_(ids), visible))


# The boolean filters are part of a statement's shape (literals, not parameters): an arm they
# contradict (is_public=false against the shared documents' arm) is left out of the statement,
# and the planner matches the rest to the partial indexes even in a generic plan.
BOOLEAN_FILTERS: Final = frozenset({"is_public", "requires_paid_access"})
# A filter as it shapes a statement: (name, its value for a boolean filter, else None).
Shape = frozenset[tuple[str, bool | None]]
# ListDocuments total_size is counted exactly up to this many documents; above, it is the
# planner's estimate (never below TOTAL_EXACT_UP_TO + 1).
TOTAL_EXACT_UP_TO: Final = 1000
# SearchDocuments first looks for a page among the caller's SEARCH_WINDOW newest visible
# documents after the page token (an index range); only when that window holds less than a
# page does it collect every match after the token through the GIN index.
SEARCH_WINDOW: Final = 1000
WINDOW: Final = "window"
CAP: Final = "cap"
# owner_role held by at most this many users is bound as the array of its holders (HOLDERS) and
# read as one index range per holder, merged (a rare role among many owners would otherwise be
# a walk of the whole time index); a role held by more is the IN (holders) filter on the
# page-order scan, which then meets a holder's document often.
FEW_HOLDERS: Final = 16
HOLDERS: Final = "holders"
_HOLDERS_FORM: Final = ("owner_role", True)
# In the per-holder form: the caller is one of the holders (HOLDERS then holds the others).
_CALLER_HOLDS: Final = ("owner_role_caller", True)
# owner_id filter naming the caller: the shared arm (owner_id != caller) is left out.
_OWNER_IS_CALLER: Final = ("owner_id", True)
# One UNION ALL branch: its WHERE clause, and whether it runs once per holder (HOLDERS).
Branch = tuple[ColumnElement[bool], bool]


def filter_shape(
    filters: Mapping[str, Any], holders: Sequence[Any] | None = None, caller: Any = None
) -> tuple[Shape, dict[str, Any]]:
    """The statement shape of these filters, and the values it binds (the non-boolean ones).
    ``holders``: owner_role's holders when they are few (the per-holder form), else None;
    ``caller``: the caller's id (an owner_id filter or a holder that is the caller takes the
    caller's own arm only)."""
    shape = {
        (name, bool(value) if name in BOOLEAN_FILTERS else None) for name, value in filters.items()
    }
    values = {name: value for name, value in filters.items() if name not in BOOLEAN_FILTERS}
    if caller is not None and values.get("owner_id") == caller:
        shape = (shape - {("owner_id", None)}) | {_OWNER_IS_CALLER}
        del values["owner_id"]
    if holders is not None and "owner_role" in values:
        shape = (shape - {("owner_role", None)}) | {_HOLDERS_FORM}
        del values["owner_role"]
        others = [holder for holder in holders if holder != caller]
        if len(others) < len(holders):
            shape.add(_CALLER_HOLDS)
        values[HOLDERS] = others
    return frozenset(shape), values


@lru_cache(maxsize=1)
def role_holders() -> DocumentQuery:
    """Up to LIMIT holders of the role named by the owner_role parameter."""
    return DocumentQuery(_holders().limit(bindparam(LIMIT, type_=Integer)))


def _holders() -> Select[Any]:
    """The user ids holding the role the owner_role parameter names."""
    return (
        select(UserRole.user_id)
        .join(Role, Role.id == UserRole.role_id)
        .where(Role.name == bindparam("owner_role", type_=String))
    )


def _filter(name: str, value: bool | None, *, own: bool = False) -> ColumnElement[bool]:
    """The filter ``name`` (``value``: a boolean filter's value) as SQL; ``own``: in the arm of
    the caller's own documents."""
    if (name, value) in (_HOLDERS_FORM, _CALLER_HOLDS):
        return true()  # the per-holder form joins the holders instead (_branches)
    if (name, value) == _OWNER_IS_CALLER:
        return COLUMNS.owner_id == CALLER_ID  # type: ignore[no-any-return]
    if name in ("owner_id", "project_id"):
        return COLUMNS[name] == bindparam(name, type_=UUID(as_uuid=True))  # type: ignore[no-any-return]
    if name in BOOLEAN_FILTERS:
        return COLUMNS[name] == (true() if value else false())  # type: ignore[no-any-return]
    # owner_role: documents whose owner holds the role.
    holders = _holders()
    if own:  # the caller's own documents: one question, does the caller hold it (an InitPlan
        # that gates the range; as an IN it would be asked of every one of their documents)
        return exists(holders.where(UserRole.user_id == CALLER_ID))
    return COLUMNS.owner_id.in_(holders)  # type: ignore[no-any-return]


def _fixed(arm: ColumnElement[bool]) -> dict[str, bool]:
    """What ``arm`` fixes: boolean columns to a constant (``is_public = true``), and "owner_id"
    to True for ``owner_id = caller`` or False for ``owner_id != caller``."""
    conjunction = isinstance(arm, BooleanClauseList) and arm.operator is operators.and_
    terms = arm.clauses if conjunction else (arm,)
    fixed: dict[str, bool] = {}
    for term in terms:
        if not isinstance(term, BinaryExpression) or not isinstance(term.left, Column):
            continue
        left, right = term.left, term.right
        if term.operator is operators.eq and isinstance(right, True_ | False_):
            fixed[left.key] = isinstance(right, True_)
        caller = getattr(right, "key", None) == CALLER_ID.key and left.key == "owner_id"
        if caller and term.operator in (operators.eq, operators.ne):
            fixed["owner_id"] = term.operator is operators.eq
    return fixed


def _branches(arms: Arms, shape: Shape) -> tuple[Branch, ...]:
    """The arms a filter does not contradict, each with the filters added; in the per-holder
    form an arm is a branch per other holder plus, when the caller holds the role, the
    caller's own documents (so no branch asks for owner_id = caller and != caller at once)."""
    found: list[Branch] = []
    for arm in arms:
        fixed = _fixed(arm)
        if any(v is not None and fixed.get(n, v) != v for n, v in shape if n != "owner_role"):
            continue
        own = fixed.get("owner_id") is True
        where = and_(arm, *(_filter(n, v, own=own) for n, v in sorted(shape, key=str)))
        if _HOLDERS_FORM not in shape:
            found.append((where, False))
            continue
        if fixed.get("owner_id") is not True:
            found.append((where, True))
        if _CALLER_HOLDS in shape and fixed.get("owner_id") is not False:
            found.append((and_(where, COLUMNS.owner_id == CALLER_ID), False))
    return tuple(found)


def _after(sort: Any, ident: Any, descending: bool) -> ColumnElement[bool]:
    """Strictly after the previous page's last (sort value, id), in the page order."""
    keys = tuple_(sort, ident)
    bound = tuple_(
        bindparam(AFTER_VALUE, type_=sort.type), bindparam(AFTER_ID, type_=COLUMNS.id.type)
    )
    return keys < bound if descending else keys > bound


def _order(source: Any, column: str, descending: bool) -> tuple[Any, Any]:
    sort, ident = source[column], source["id"]
    return (sort.desc(), ident.desc()) if descending else (sort.asc(), ident.asc())


def _page_columns(source: Any, order: tuple[Any, ...]) -> tuple[Any, ...]:
    """READ_COLUMNS of ``source`` (the table's columns, or a subquery's), with the content only
    of rows whose running byte total (title + content + overhead, in page order) is within the
    BUDGET parameter, and that total: a page never reads past its response budget, at one
    window aggregate over rows the scan reads anyway (octet_length reads a stored text's
    header, not its body)."""
    overhead = literal_column(str(ROW_OVERHEAD), type_=Integer)
    sizes = func.octet_length(source.title) + func.octet_length(source.content) + overhead
    running = func.sum(sizes).over(order_by=order, rows=(None, 0))
    within = running <= bindparam(BUDGET, type_=BigInteger)
    content = case((within, source.content), else_=literal_column("''")).label("content")
    others = tuple(source[column.key] for column in READ_COLUMNS if column is not COLUMNS.content)
    return (*others, content, running.label("running_bytes"))


def _per_holder(
    arm: ColumnElement[bool],
    columns: tuple[Any, ...],
    limit: Any,
    order: tuple[Any, ...] | None,
    *,
    of_role: bool = False,
) -> Any:
    """``arm`` as one branch per holder of the owner_role (the HOLDERS array; ``of_role``: every
    holder of the role the owner_role parameter names): a lateral index range per holder (in
    ``order``, up to ``limit`` rows each), their union."""
    if of_role:
        holder: Any = _holders().subquery("holder")
        owner = holder.c.user_id
    else:
        holders = func.unnest(bindparam(HOLDERS, type_=ARRAY(UUID(as_uuid=True))))
        holder = holders.table_valued("owner").render_derived(name="holder")
        owner = holder.c.owner
    per_owner = select(*columns).where(arm, COLUMNS.owner_id == owner)
    if order is not None:
        per_owner = per_owner.order_by(*order)
    ranged = per_owner.limit(limit).lateral("per_holder")
    return select(*ranged.c).select_from(holder.join(ranged, true()))


def _ordered_union(
    branches: tuple[Branch, ...],
    column: str,
    descending: bool,
    after: bool,
    limit: str,
    extra: tuple[Any, ...] = (),
) -> Any:
    """The first ``limit`` rows of these branches in the order: each branch is an index range
    of its own (ORDER BY … LIMIT per branch; per holder of the owner_role in a per-holder
    branch), merged; a subquery with READ_COLUMNS."""
    columns = (*READ_COLUMNS, *extra)
    limit_param = bindparam(limit, type_=Integer)
    order = _order(COLUMNS, column, descending)
    selects = []
    for where, per_holder in branches or ((false(), False),):
        if after:
            where = and_(where, _after(COLUMNS[column], COLUMNS.id, descending))
        if per_holder:
            merged = _per_holder(where, columns, limit_param, order).subquery("holders")
            stmt = select(merged).order_by(*_order(merged.c, column, descending))
        else:
            stmt = select(*columns).where(where).order_by(*order)
        selects.append(stmt.limit(limit_param))
    if len(selects) == 1:
        return selects[0].subquery("visible")
    union = union_all(*selects).subquery("arms")
    return (
        select(union)
        .order_by(*_order(union.c, column, descending))
        .limit(limit_param)
        .subquery("visible")
    )


@lru_cache(maxsize=4096)
def list_page(arms: Arms, order_by: str, shape: Shape, after: bool) -> DocumentQuery:
    column, descending = ORDER_BY[order_by]
    rows = _ordered_union(_branches(arms, shape), column, descending, after, LIMIT)
    order = _order(rows.c, column, descending)
    stmt = select(*_page_columns(rows.c, order)).order_by(*order)
    return DocumentQuery(stmt)


@lru_cache(maxsize=1024)
def list_count(arms: Arms, shape: Shape) -> DocumentQuery:
    """How many documents, each arm (each holder's range, in the per-holder form) counted up
    to the CAP parameter: a count past it stops there."""
    cap = bindparam(CAP, type_=Integer)
    # In an index's order, so each branch is an index range that stops at CAP (a bitmap scan
    # would first collect every match: all of an owner's documents, say).
    # A role held by many (the IN (holders) form) is counted per holder too, each holder an
    # owner index range: in the time index its holders' documents lie scattered across the
    # table, a random heap page a row (at 1M documents ~90 ms to count 1,001 for a common
    # role, against ~5 ms per holder).
    of_role = ("owner_role", None) in shape
    order = _order(COLUMNS, "create_time", True)
    branches: list[Select[Any]] = []
    for where, per_holder in _branches(arms, shape):
        own = _fixed(where).get("owner_id") is True  # the caller's own range already
        if per_holder or (of_role and not own):
            ranged = _per_holder(where, (COLUMNS.id,), cap, order, of_role=not per_holder)
            branches.append(select(ranged.subquery("ranged").c.id).limit(cap))
        else:
            branches.append(select(COLUMNS.id).where(where).order_by(*order).limit(cap))
    branches = branches or [select(COLUMNS.id).where(false())]
    counted = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery("counted")
    return DocumentQuery(select(func.count()).select_from(counted))


@lru_cache(maxsize=1024)
def list_estimate(arms: Arms, shape: Shape) -> DocumentQuery:
    """The statement whose row estimate (EXPLAIN) stands for a total above the exact range."""
    holders = bindparam(HOLDERS, type_=ARRAY(UUID(as_uuid=True)))
    where = [
        and_(clause, COLUMNS.owner_id == any_(holders)) if per_holder else clause
        for clause, per_holder in _branches(arms, shape)
    ]
    return DocumentQuery(select(COLUMNS.id).where(or_(*where) if where else false()))


def _tsquery() -> Any:
    return func.websearch_to_tsquery(
        literal_column("'simple'::regconfig"), bindparam(QUERY, type_=Text)
    )


@lru_cache(maxsize=512)
def search_window(arms: Arms, after: bool) -> DocumentQuery:
    """Matches among the SEARCH_WINDOW newest visible documents after the token, newest
    first: an index range per arm, read lazily, so a common word reads about a page."""
    branches = tuple((arm, False) for arm in arms)
    rows = _ordered_union(branches, "create_time", True, after, WINDOW, (COLUMNS.search,))
    order = _order(rows.c, "create_time", True)
    stmt = (
        select(*_page_columns(rows.c, order))
        .where(rows.c.search.bool_op("@@")(_tsquery()))
        .order_by(*order)
        .limit(bindparam(LIMIT, type_=Integer))
    )
    return DocumentQuery(stmt)


@lru_cache(maxsize=512)
def search_matches(arms: Arms, after: bool) -> DocumentQuery:
    """Every visible match after the token, through the GIN index (a materialized CTE keeps
    the planner from walking the time index instead), newest first."""
    visible = arms[0] if len(arms) == 1 else or_(*arms)
    matches = select(*READ_COLUMNS).where(COLUMNS.search.bool_op("@@")(_tsquery()), visible)
    if after:
        matches = matches.where(_after(COLUMNS.create_time, COLUMNS.id, True))
    found = matches.cte("matches").prefix_with("MATERIALIZED")
    order = _order(found.c, "create_time", True)
    stmt = (
        select(*_page_columns(found.c, order))
        .order_by(*order)
        .limit(bindparam(LIMIT, type_=Integer))
    )
    return DocumentQuery(stmt)
