"""`Range` headers of downloads: one range, suffixes, clamping, 416 past the end, 400 when malformed."""

from __future__ import annotations

import pytest

from emulator.api.ranges import byte_range
from emulator.errors import BadRequest, RangeNotSatisfiable


@pytest.mark.parametrize(
    "header,expected",
    [
        (None, None),
        ("bytes=0-0", (0, 0)),
        ("bytes=0-99", (0, 99)),
        ("BYTES = 10 - 19", (10, 19)),
        ("bytes=990-", (990, 999)),
        ("bytes=-1", (999, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=500-5000", (500, 999)),
        ("bytes=0-1,5-6", None),
    ],
)
def test_byte_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1000", "bytes=-0"])
def test_unsatisfiable_byte_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        byte_range(header, 1000)
    assert raised.value.headers == {"Content-Range": "bytes */1000"}


@pytest.mark.parametrize(
    "header",
    ["", "bytes", "bytes=", "bytes=x-1", "bytes=5-1", "bytes=-", "lines=0-1", "bytes=0-1,", "bytes=1--2"],
)
def test_malformed_byte_ranges(header: str) -> None:
    with pytest.raises(BadRequest):
        byte_range(header, 1000)
