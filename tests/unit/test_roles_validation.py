"""Edge validation used by RoleService and UserService (pure functions, no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from docgate import mapping, validation
from docgate.errors import InvalidArgument


@pytest.mark.parametrize(("given", "expected"), [(0, 50), (1, 1), (500, 500), (10**9, 500)])
def test_page_size_defaults_and_clamps(given: int, expected: int) -> None:
    assert validation.page_size(given) == expected


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.page_size(-1)
    assert caught.value.reason == "INVALID_PAGE_SIZE"


@pytest.mark.parametrize("paths", [[], ["name"], ["email", "roles"]])
def test_update_mask_must_name_known_paths(paths: list[str]) -> None:
    with pytest.raises(InvalidArgument):
        validation.update_mask(paths, frozenset({"email", "is_active"}))


def test_update_mask_accepts_a_subset() -> None:
    allowed = frozenset({"email", "is_active"})
    assert validation.update_mask(["email"], allowed) == {"email"}


@pytest.mark.parametrize(
    ("value", "required", "ok"),
    [("", False, True), ("", True, False), ("  ", True, False), ("a\x00", False, False)],
)
def test_text(value: str, required: bool, ok: bool) -> None:
    if ok:
        assert validation.text(value, "f", max_length=5, required=required) == value
    else:
        with pytest.raises(InvalidArgument):
            validation.text(value, "f", max_length=5, required=required)


def test_text_length_limit() -> None:
    assert validation.text("x" * 5, "f", max_length=5)
    with pytest.raises(InvalidArgument):
        validation.text("x" * 6, "f", max_length=5)


def test_email_refuses_nul() -> None:
    with pytest.raises(InvalidArgument):
        validation.email("a\x00b@example.com")


@pytest.mark.parametrize(
    "value", [Timestamp(seconds=10**12), Timestamp(seconds=-(10**12)), Timestamp(nanos=-1)]
)
def test_out_of_range_timestamps_are_invalid(value: Timestamp) -> None:
    with pytest.raises(InvalidArgument):
        validation.timestamp(value, "expire_time")


def test_timestamp_is_utc_aware() -> None:
    parsed = validation.timestamp(Timestamp(seconds=1_700_000_000), "expire_time")
    assert parsed == datetime.fromtimestamp(1_700_000_000, UTC)


def test_grant_mapping_leaves_unset_fields_unset() -> None:
    now = datetime.now(UTC)
    grant = mapping.grant(
        role="r1",
        configuration_id=uuid.UUID(int=1),
        access_level=1,
        granted_by=None,
        granted_at=now,
        expires_at=None,
    )
    assert grant.granted_by == "" and not grant.HasField("expire_time")
    assert grant.HasField("grant_time")
