"""docgate.templates: what a marker is, literal substitution, the missing/unknown errors, and
hypothesis properties: values go in verbatim (never expanded), and no marker survives in the
body's own text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docgate.errors import InvalidArgument
from docgate.templates import placeholders, render


def test_markers_are_replaced_everywhere() -> None:
    body = "Dear {{name}},\n{{ name }} owes {{amount}}. -- {{name}}"
    assert placeholders(body) == {"name", "amount"}
    assert render(body, {"name": "Ann", "amount": "5 €"}) == "Dear Ann,\nAnn owes 5 €. -- Ann"


def test_a_body_without_markers_renders_as_itself() -> None:
    body = "plain {text} with { {braces} } and }} {{"
    assert placeholders(body) == frozenset()
    assert render(body, {}) == body


@pytest.mark.parametrize(
    "literal",
    ["{{}}", "{{ }}", "{{Name}}", "{{a.b}}", "{{a-b}}", "{{9a}}", "{{\ta}}", "{{a\n}}", "{{a}",
     "{a}}", "{ {a} }", "{{é}}", "{{ a b }}"],
)  # fmt: skip
def test_what_is_not_a_marker_stays_literal(literal: str) -> None:
    assert placeholders(literal) == frozenset()
    assert render(literal, {}) == literal


def test_names_and_spaces() -> None:
    assert placeholders("{{_}}{{a_1}}{{   b   }}{{ __c9 }}") == {"_", "a_1", "b", "__c9"}


def test_extra_braces_are_literal_text() -> None:
    assert render("{{{a}}}", {"a": "v"}) == "{v}"
    # Literal braces may surround a value; the result is never rendered again.
    assert render("{{{{a}}}}", {"a": "a"}) == "{{a}}"


@pytest.mark.parametrize("value", ["{{a}}", "{{ b }}", r"\1", r"\g<0>", "\\", "$1", "%s", "{}"])
def test_values_are_inserted_verbatim_and_never_expanded(value: str) -> None:
    assert render("<{{a}}|{{b}}>", {"a": value, "b": "B"}) == f"<{value}|B>"


def test_missing_values_are_listed_sorted() -> None:
    with pytest.raises(InvalidArgument) as caught:
        render("{{b}} {{a}} {{c}}", {"c": "x"})
    assert caught.value.reason == "MISSING_TEMPLATE_VALUES"
    assert caught.value.metadata == {"field": "values", "names": "a,b"}
    assert "a, b" in caught.value.message


def test_unknown_values_are_listed_sorted() -> None:
    with pytest.raises(InvalidArgument) as caught:
        render("{{a}}", {"a": "1", "zz": "2", "y": "3"})
    assert caught.value.reason == "UNKNOWN_TEMPLATE_VALUES"
    assert caught.value.metadata == {"field": "values", "names": "y,zz"}


def test_missing_is_reported_before_unknown() -> None:
    with pytest.raises(InvalidArgument) as caught:
        render("{{a}}", {"b": "1"})
    assert (caught.value.reason, caught.value.metadata["names"]) == ("MISSING_TEMPLATE_VALUES", "a")


def test_a_long_listing_is_cut_and_counted() -> None:
    """Metadata goes into gRPC trailers, which are small: the names are capped, not dropped."""
    names = [f"n{i:04d}" for i in range(1000)]
    with pytest.raises(InvalidArgument) as caught:
        render("".join(f"{{{{{n}}}}}" for n in names), {})
    listed = caught.value.metadata["names"].split(",")
    assert listed == names[: len(listed)]
    assert len(caught.value.metadata["names"]) <= 1024
    assert int(caught.value.metadata["unlisted"]) == len(names) - len(listed)


# --- properties ------------------------------------------------------------------------------

NAMES = st.text("ab_1", min_size=1, max_size=3).filter(lambda n: not n[0].isdigit())
# Bodies rich in the characters markers are made of, so near-misses are common.
BODIES = st.lists(
    st.one_of(
        st.text("{} ab_1A.\n", max_size=8),
        st.builds(lambda n, left, right: "{{" + " " * left + n + " " * right + "}}", NAMES,
                  st.integers(0, 2), st.integers(0, 2)),
    ),
    max_size=12,
).map("".join)  # fmt: skip
VALUES = st.text(max_size=12) | st.sampled_from(["{{a}}", "{{ b }}", "}}", "{{", r"\1", "{"])

# One character per placeholder, outside every alphabet above and outside every marker.
TOKENS = [chr(0x2460 + i) for i in range(64)]


def tokens_for(body: str) -> dict[str, str]:
    return {name: TOKENS[i] for i, name in enumerate(sorted(placeholders(body)))}


@given(body=BODIES)
def test_no_marker_of_the_body_survives(body: str) -> None:
    """With values that cannot form markers, nothing marker-like is left: every marker of
    the body's own text was replaced (a marker in the output can only involve a value)."""
    assert placeholders(render(body, tokens_for(body))) == frozenset()


@given(body=BODIES, data=st.data())
def test_values_go_in_verbatim(body: str, data: st.DataObject) -> None:
    """Rendering with real values is rendering with tokens, then putting each value where its
    token is: a value is never looked into (no expansion, no escapes), whatever it holds."""
    tokens = tokens_for(body)
    values = {name: data.draw(VALUES, label=name) for name in tokens}
    by_token = {token: values[name] for name, token in tokens.items()}
    # Tokens are single characters that occur nowhere else, so one pass finds exactly them.
    expected = "".join(by_token.get(c, c) for c in render(body, tokens))
    assert render(body, values) == expected


@given(body=BODIES, extra=NAMES, data=st.data())
def test_exactly_the_placeholders_must_have_values(
    body: str, extra: str, data: st.DataObject
) -> None:
    names = placeholders(body)
    values = {name: "v" for name in names}
    if names:
        dropped = data.draw(st.sampled_from(sorted(names)))
        with pytest.raises(InvalidArgument) as caught:
            render(body, {k: v for k, v in values.items() if k != dropped})
        assert caught.value.reason == "MISSING_TEMPLATE_VALUES"
        assert caught.value.metadata["names"] == dropped
    if extra not in names:
        with pytest.raises(InvalidArgument) as caught:
            render(body, values | {extra: "v"})
        assert caught.value.reason == "UNKNOWN_TEMPLATE_VALUES"
        assert caught.value.metadata["names"] == extra
