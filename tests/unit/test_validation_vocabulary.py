"""One error vocabulary: every INVALID_ARGUMENT the edge validation raises names the offending
field in its message and in ErrorInfo metadata ``field``; a bad mask path is named too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from docgate import pagination, validation
from docgate.errors import InvalidArgument

CASES: list[tuple[str, Callable[[], object], str]] = [
    ("parse_id", lambda: validation.parse_id("nope", "document.id"), "document.id"),
    ("optional_id", lambda: validation.optional_id("x", "owner_id"), "owner_id"),
    ("username", lambda: validation.username("A"), "username"),
    ("email", lambda: validation.email("no-at-sign"), "email"),
    ("role_name", lambda: validation.role_name("X", "owner_role"), "owner_role"),
    ("text", lambda: validation.text("", "name", max_length=5, required=True), "name"),
    ("title", lambda: validation.title("", "document.title"), "document.title"),
    ("title NUL", lambda: validation.title("a\x00", "document.title"), "document.title"),
    ("content", lambda: validation.content("xx", 1, "document.content"), "document.content"),
    ("search_query", lambda: validation.search_query("  "), "query"),
    ("batch_ids", lambda: validation.batch_ids([]), "ids"),
    ("page_size", lambda: validation.page_size(-1), "page_size"),
    ("order_by", lambda: validation.order_by("size", ["title"], "title"), "order_by"),
    ("update_mask", lambda: validation.update_mask([], {"a"}), "update_mask"),
    ("parse_etag", lambda: validation.parse_etag("17"), "etag"),
    ("positive", lambda: validation.positive(0, "access_level", "X"), "access_level"),
    (
        "finite",
        lambda: validation.finite(float("nan"), "score", low=1, high=5, reason="X"),
        "score",
    ),
    ("timestamp", lambda: validation.timestamp(Timestamp(nanos=-1), "expire_time"), "expire_time"),
    (
        "page_token",
        lambda: pagination.Keyset(()).start(pagination.PageTokens(b"k" * 32), "garbage", "fp"),
        "page_token",
    ),
]


@pytest.mark.parametrize(("check", "call", "field"), CASES, ids=[c[0] for c in CASES])
def test_every_invalid_argument_names_its_field(
    check: str, call: Callable[[], object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        call()
    assert caught.value.metadata["field"] == field
    assert caught.value.reason.isupper()
    if check != "page_token":  # "page_token is not valid"
        assert field in caught.value.message or field.split(".")[-1] in caught.value.message


def test_an_unknown_mask_path_is_named() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.update_mask(["title", "owner_id"], {"title", "content"})
    assert "owner_id" in caught.value.message
    assert caught.value.metadata == {"field": "update_mask", "path": "owner_id"}


def test_wildcard_only_where_allowed() -> None:
    assert validation.update_mask(["*"], {"a", "b"}, wildcard=True) == {"a", "b"}
    with pytest.raises(InvalidArgument):
        validation.update_mask(["*"], {"a", "b"})


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), 0.999, 5.001])
def test_finite_refuses_out_of_range(value: float) -> None:
    with pytest.raises(InvalidArgument):
        validation.finite(value, "score", low=1, high=5, reason="INVALID_SCORE")
    assert validation.finite(4.5, "score", low=1, high=5, reason="INVALID_SCORE") == 4.5
