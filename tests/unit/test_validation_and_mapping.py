from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from docgate import mapping, validation
from docgate.errors import InvalidArgument


@pytest.mark.parametrize(
    "value",
    ["", "abc", "0" * 35, str(uuid.uuid4()) + "0", "{" + str(uuid.uuid4()) + "}",
     str(uuid.uuid4()) + " ", uuid.uuid4().hex, "\x00" * 36, "x" * 10_000],
)  # fmt: skip
def test_malformed_ids_are_invalid_argument(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.parse_id(value)
    assert caught.value.reason == "INVALID_ID"


def test_canonical_ids_parse_in_either_case() -> None:
    value = uuid.uuid4()
    assert validation.parse_id(str(value)) == value
    assert validation.parse_id(str(value).upper()) == value


@pytest.mark.parametrize("value", ["a", "A_b", "1abc", "a b", "a" * 65, "ab\x00"])
def test_bad_usernames(value: str) -> None:
    with pytest.raises(InvalidArgument):
        validation.username(value)


@pytest.mark.parametrize("value", ["", "a@b", "@b.c", "a@@b.c", "a b@c.d", "a@" + "b" * 260 + ".c"])
def test_bad_emails(value: str) -> None:
    with pytest.raises(InvalidArgument):
        validation.email(value)


def test_email_is_normalised_to_lower_case() -> None:
    assert validation.email("Bob@Example.COM") == "bob@example.com"


@pytest.mark.parametrize("value", ["a", "Admin", "9lives", "with-dash", "x" * 51])
def test_bad_role_names(value: str) -> None:
    with pytest.raises(InvalidArgument):
        validation.role_name(value)


def test_user_mapping() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    uid = uuid.uuid4()
    message = mapping.user(
        id=uid, username="bob", email="b@x.io", is_active=True, roles=["paid_user", "admin"],
        create_time=now, update_time=now,
    )  # fmt: skip
    assert message.id == str(uid)
    assert list(message.roles) == ["admin", "paid_user"]
    assert message.create_time.ToDatetime(tzinfo=UTC) == now
