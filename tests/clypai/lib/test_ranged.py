"""clypai.lib.ranged: one byte range of a stored file (206), so players can seek."""

from __future__ import annotations

import pytest

from clypai.lib.ranged import parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-10", (990, 999)),
        ("bytes=900-5000", (900, 999)),
        ("", None),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
        ("items=0-1", None),
    ],
)
def test_it_reads_a_single_byte_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "bytes=-0"])
def test_it_refuses_a_range_outside_the_file(header):
    with pytest.raises(ValueError):
        parse_range(header, 1000)
