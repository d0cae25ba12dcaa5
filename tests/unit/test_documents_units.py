"""Pure pieces of the DocumentService: request checks, document mapping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from docgate import mapping
from docgate import validation as check
from docgate.errors import InvalidArgument
from docgate.services.documents import UPDATABLE_FIELDS


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
    expected = Timestamp()
    expected.FromDatetime(moment)  # protobuf's own converter, the reference
    assert doc.create_time == doc.update_time == doc.delete_time == expected
    assert mapping.timestamp(moment) == expected
    assert mapping.timestamp(moment.replace(tzinfo=None)) == Timestamp(
        seconds=expected.seconds + int(moment.utcoffset().total_seconds()),  # type: ignore[union-attr]
        nanos=expected.nanos,
    )  # naive: read as UTC
