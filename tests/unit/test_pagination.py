"""Page tokens: authenticated with a keyed MAC, typed on the way back, and always accepted back
when docgate issued them (issue 11 findings 4 and 12)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docgate import pagination
from docgate.errors import InvalidArgument
from docgate.pagination import KeyKind, Keyset, PageTokens

TOKENS = PageTokens(b"k" * 32)
KEYS = st.lists(
    st.one_of(st.text(), st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
    max_size=3,
)


@given(fingerprint=st.text(max_size=20), key=KEYS)
def test_token_round_trip(fingerprint: str, key: list[object]) -> None:
    assert TOKENS.decode(TOKENS.encode(fingerprint, key), fingerprint) == key  # type: ignore[arg-type]


@given(key=KEYS, position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(key: list[object], position: int, bit: int) -> None:
    token = TOKENS.encode("fp", key)  # type: ignore[arg-type]
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[position % len(raw)] ^= 1 << bit
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(InvalidArgument) as caught:
        TOKENS.decode(tampered, "fp")
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_token_of_other_query_is_refused() -> None:
    token = TOKENS.encode(pagination.fingerprint("list", "a"), [1, "x"])
    with pytest.raises(InvalidArgument):
        TOKENS.decode(token, pagination.fingerprint("list", "b"))


def _unkeyed(body: list[object]) -> str:
    """A token minted the way an attacker can: a well-formed body under any other key."""
    raw = json.dumps([2, "fp", body]).encode()
    mac = PageTokens(b"attacker-key-0123456789")._mac(raw)
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "sort_key",
    [[10**400, str(uuid.uuid4())], ["a\x00b", str(uuid.uuid4())], ["\ud800", "x"], [[[[]]], "x"]],
    ids=["huge-int", "nul", "lone-surrogate", "nested"],
)
def test_a_token_under_another_key_is_refused(sort_key: list[object]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Keyset((KeyKind.TIMESTAMP, KeyKind.UUID)).start(TOKENS, _unkeyed(sort_key), "fp")
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize(
    ("kinds", "sort_key"),
    [
        ((KeyKind.TIMESTAMP, KeyKind.UUID), [10**400, str(uuid.uuid4())]),
        ((KeyKind.TIMESTAMP, KeyKind.UUID), [2**62, str(uuid.uuid4())]),
        ((KeyKind.TEXT, KeyKind.UUID), ["a\x00b", str(uuid.uuid4())]),
        ((KeyKind.TEXT, KeyKind.UUID), ["\ud800", str(uuid.uuid4())]),
        ((KeyKind.TEXT, KeyKind.UUID), ["x" * 5000, str(uuid.uuid4())]),
        ((KeyKind.NUMBER, KeyKind.UUID), [10**400, str(uuid.uuid4())]),
        ((KeyKind.UUID,), ["not-a-uuid"]),
        ((KeyKind.UUID,), [[["deep"]]]),
    ],
)
def test_even_a_correctly_keyed_token_is_typed_and_ranged(
    kinds: tuple[KeyKind, ...], sort_key: list[object]
) -> None:
    raw = json.dumps([2, "fp", sort_key]).encode()  # ASCII escapes carry lone surrogates too
    token = base64.urlsafe_b64encode(TOKENS._mac(raw) + raw).decode()
    with pytest.raises(InvalidArgument):
        Keyset(kinds).start(TOKENS, token, "fp")


def test_nan_smuggled_into_the_body_is_refused() -> None:
    body = json.dumps([2, "fp", [float("nan"), "x"]]).encode()
    assert b"NaN" in body
    with pytest.raises(InvalidArgument):
        TOKENS.decode(base64.urlsafe_b64encode(TOKENS._mac(body) + body).decode(), "fp")


@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    ident=st.uuids(),
    name=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=30,
    ),
    rank=st.floats(allow_nan=False, allow_infinity=False, width=32),
)
def test_keyset_round_trips_every_key_kind(
    moment: datetime, ident: uuid.UUID, name: str, rank: float
) -> None:
    keyset = Keyset((KeyKind.TIMESTAMP, KeyKind.TEXT, KeyKind.NUMBER, KeyKind.UUID))
    rows = [(moment, name, rank, ident), (moment, name, rank, uuid.uuid4())]
    kept, token = keyset.page(TOKENS, rows, 1, "fp", lambda row: row)
    assert list(kept) == rows[:1]
    assert keyset.start(TOKENS, token, "fp") == (moment, name, rank, ident)
    assert keyset.page(TOKENS, rows, 2, "fp", lambda row: row) == (rows, "")
    assert keyset.start(TOKENS, "", "fp") is None


@given(
    title=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=255,
    ),
    script=st.sampled_from(["", "😀", "漢", "é", "\U0001f9d1\u200d\U0001f680"]),
)
def test_every_token_docgate_issues_is_accepted_back(title: str, script: str) -> None:
    """The longest sort key is a 255-character title in any script: its token must decode."""
    title = (title + script * 255)[:255]
    keyset = Keyset((KeyKind.TEXT, KeyKind.UUID))
    fingerprint = pagination.fingerprint("list", "title", None, None, None, None, False)
    rows = [(title, uuid.uuid4()), (title, uuid.uuid4())]
    _, token = keyset.page(TOKENS, rows, 1, fingerprint, lambda row: row)
    assert keyset.start(TOKENS, token, fingerprint) == rows[0]


def test_keyset_refuses_a_token_of_another_shape() -> None:
    token = TOKENS.encode("fp", ["not-a-uuid"])
    with pytest.raises(InvalidArgument) as caught:
        Keyset((KeyKind.UUID,)).start(TOKENS, token, "fp")
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidArgument):
        Keyset((KeyKind.TEXT, KeyKind.UUID)).start(TOKENS, token, "fp")


def test_page_token_secret_decides_the_key() -> None:
    """DOCGATE_PAGE_TOKEN_SECRET: one key for every process of a deployment; unset with HS256,
    derived from the JWT secret under its own label; required with RS256/ES256."""
    from docgate.config import Settings
    from docgate.tokens import KeyConfigurationError, page_token_key

    jwt = "j" * 40
    derived = page_token_key(Settings(jwt_secret=jwt))
    assert derived == page_token_key(Settings(jwt_secret=jwt))  # every process, every restart
    assert derived != jwt.encode()[:32]  # never the JWT key itself
    chosen = page_token_key(Settings(jwt_secret=jwt, page_token_secret="p" * 32))
    assert chosen != derived
    token = PageTokens(chosen).encode("fp", ["a"])
    assert PageTokens(chosen).decode(token, "fp") == ["a"]
    with pytest.raises(InvalidArgument):
        PageTokens(derived).decode(token, "fp")
    with pytest.raises(KeyConfigurationError, match="PAGE_TOKEN_SECRET"):
        page_token_key(Settings(jwt_algorithm="RS256"))


@given(st.lists(st.integers(min_value=0, max_value=50_000), max_size=30))
def test_fitting_keeps_the_longest_prefix_within_the_budget(sizes: list[int]) -> None:
    budget = 100_000
    count = pagination.fitting(sizes, budget)
    used = sum(size + pagination.ITEM_OVERHEAD for size in sizes[:count])
    assert used + pagination.PAGE_RESERVE <= budget
    if count < len(sizes):
        assert used + sizes[count] + pagination.ITEM_OVERHEAD + pagination.PAGE_RESERVE > budget


def test_a_page_cut_short_continues_after_its_last_row() -> None:
    tokens, keyset = PageTokens(b"k" * 32), Keyset((KeyKind.UUID,))
    rows = [uuid.uuid4() for _ in range(5)]
    kept, token = keyset.page(tokens, rows, 2, "f", lambda row: (row,))
    assert list(kept) == rows[:2]
    assert keyset.start(tokens, token, "f") == (rows[1],)
    with pytest.raises(ValueError):
        keyset.page(tokens, rows, 0, "f", lambda row: (row,))
