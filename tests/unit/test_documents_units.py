"""Pure pieces of the DocumentService: page tokens, request checks, document mapping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docgate import mapping, pagination
from docgate import validation as check
from docgate.errors import InvalidArgument
from docgate.services.documents import UPDATABLE_FIELDS

KEYS = st.lists(st.one_of(st.text(), st.integers(), st.floats(allow_nan=False)), max_size=3)


@given(fingerprint=st.text(max_size=20), key=KEYS)
def test_token_round_trip(fingerprint: str, key: list[object]) -> None:
    assert pagination.decode(pagination.encode(fingerprint, key), fingerprint) == key  # type: ignore[arg-type]


@given(key=KEYS, position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(key: list[object], position: int, bit: int) -> None:
    import base64

    token = pagination.encode("fp", key)  # type: ignore[arg-type]
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[position % len(raw)] ^= 1 << bit
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(InvalidArgument) as caught:
        pagination.decode(tampered, "fp")
    assert caught.value.reason == "INVALID_PAGE_TOKEN"


def test_token_of_other_query_is_refused() -> None:
    token = pagination.encode(pagination.fingerprint("list", "a"), [1, "x"])
    with pytest.raises(InvalidArgument):
        pagination.decode(token, pagination.fingerprint("list", "b"))


@pytest.mark.parametrize(("given_size", "used"), [(0, 50), (1, 1), (500, 500), (501, 500)])
def test_page_size(given_size: int, used: int) -> None:
    assert check.page_size(given_size) == used


def test_negative_page_size() -> None:
    with pytest.raises(InvalidArgument):
        check.page_size(-1)


@pytest.mark.parametrize(
    ("paths", "fields"),
    [(["*"], set(UPDATABLE_FIELDS)), (["title", "title"], {"title"}),
     (["is_public", "content"], {"is_public", "content"})],
)  # fmt: skip
def test_update_mask(paths: list[str], fields: set[str]) -> None:
    assert check.update_mask(paths, UPDATABLE_FIELDS, wildcard=True) == fields


def test_etag_round_trip() -> None:
    assert check.parse_etag(mapping.etag(17)) == 17
    assert check.parse_etag("") is None
    for bad in ('"17"', 'W/"0"', 'W/"-1"', "W/17", 'W/"17" '):
        with pytest.raises(InvalidArgument):
            check.parse_etag(bad)


def test_content_limit_counts_utf8_bytes() -> None:
    assert check.content("é" * 5, 10) == "é" * 5
    with pytest.raises(InvalidArgument):
        check.content("é" * 6, 10)


def test_document_mapping() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    row = dict(
        id=uuid.uuid4(), title="t", content="c", owner_id=uuid.uuid4(), project_id=None,
        is_public=True,
        requires_paid_access=False, create_time=now, update_time=now, delete_time=None, version=3,
    )  # fmt: skip
    doc = mapping.document(row)  # type: ignore[arg-type]
    assert (doc.id, doc.etag, doc.HasField("delete_time")) == (str(row["id"]), 'W/"3"', False)
    assert doc.create_time.ToDatetime(tzinfo=UTC) == now
    row["delete_time"] = now
    assert mapping.document(row).delete_time.ToDatetime(tzinfo=UTC) == now  # type: ignore[arg-type]


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
)
def test_document_timestamps_match_the_shared_converter(moment: datetime) -> None:
    row = dict(
        id=uuid.uuid4(), title="t", content="", owner_id=uuid.uuid4(), project_id=None,
        is_public=False,
        requires_paid_access=False, create_time=moment, update_time=moment,
        delete_time=moment, version=1,
    )  # fmt: skip
    doc = mapping.document(row)  # type: ignore[arg-type]
    expected = mapping.timestamp(moment)
    assert doc.create_time == doc.update_time == doc.delete_time == expected


@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    ident=st.uuids(),
    name=st.text(max_size=30),
    rank=st.floats(allow_nan=False, allow_infinity=False, width=32),
)
def test_keyset_round_trips_every_key_kind(
    moment: datetime, ident: uuid.UUID, name: str, rank: float
) -> None:
    kinds = (
        pagination.KeyKind.TIMESTAMP,
        pagination.KeyKind.TEXT,
        pagination.KeyKind.NUMBER,
        pagination.KeyKind.UUID,
    )
    keyset = pagination.Keyset(kinds)
    rows = [(moment, name, rank, ident), (moment, name, rank, uuid.uuid4())]
    kept, token = keyset.page(rows, 1, "fp", lambda row: row)
    assert list(kept) == rows[:1]
    assert keyset.start(token, "fp") == (moment, name, rank, ident)
    assert keyset.page(rows, 2, "fp", lambda row: row) == (rows, "")
    assert keyset.start("", "fp") is None


def test_keyset_refuses_a_token_of_another_shape() -> None:
    token = pagination.encode("fp", ["not-a-uuid"])
    with pytest.raises(InvalidArgument) as caught:
        pagination.Keyset((pagination.KeyKind.UUID,)).start(token, "fp")
    assert caught.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidArgument):
        pagination.Keyset((pagination.KeyKind.TEXT, pagination.KeyKind.UUID)).start(token, "fp")
