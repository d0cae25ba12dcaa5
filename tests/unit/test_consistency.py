"""The consistency token: an LSN in, the same LSN out; anything else is refused."""

from __future__ import annotations

import pytest

from docgate.db.consistency import HEADER, encode_token, lsn_from_pg, token_from
from docgate.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "lsn"),
    [("0/0", 0), ("0/16B3748", 0x16B3748), ("1/0", 1 << 32), ("FFFFFFFF/FFFFFFFF", 2**64 - 1)],
)
def test_pg_lsn_text_is_bytes_into_the_wal(text: str, lsn: int) -> None:
    assert lsn_from_pg(text) == lsn
    assert token_from(((HEADER, encode_token(lsn)),)) == lsn


def test_no_token_is_none_and_other_metadata_is_ignored() -> None:
    assert token_from((("authorization", "Bearer x"),)) is None
    assert token_from(None) is None


@pytest.mark.parametrize(
    "value",
    ["", "1.", "1.0/16B3748", "1.00000000016B374G", "1.00000000016b3748 ", "2.0000000001000000"],
)
def test_anything_but_a_token_is_refused(value: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        token_from(((HEADER, value),))
    assert refused.value.reason == "MALFORMED_CONSISTENCY_TOKEN"
    assert refused.value.field == HEADER


def test_order_follows_the_wal() -> None:
    assert lsn_from_pg("1/0") > lsn_from_pg("0/FFFFFFFF")
    with pytest.raises(ValueError, match="pg_lsn"):
        lsn_from_pg("16B3748")
