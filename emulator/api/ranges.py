"""HTTP `Range` headers of file downloads: the one byte range a request asks for (RFC 9110 §14)."""

from __future__ import annotations

import re

from emulator.errors import BadRequest, RangeNotSatisfiable

_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def byte_range(header: str | None, length: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte a `Range` header asks for; None for the whole file.

    One range only: a multi-range request gets the whole file (RFC 9110 lets a server ignore Range).
    Malformed -> 400; a range starting at or beyond the end -> 416.
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        raise BadRequest(f"Invalid Range header '{header}': expected bytes=FIRST-LAST, FIRST- or -SUFFIX")
    parts = spec.split(",")
    parsed = [_RANGE.match(part) for part in parts]
    for match in parsed:
        if match is None or not (match.group(1) or match.group(2)):
            raise BadRequest(f"Invalid Range header '{header}': expected bytes=FIRST-LAST, FIRST- or -SUFFIX")
        if match.group(1) and match.group(2) and int(match.group(2)) < int(match.group(1)):
            raise BadRequest(f"Invalid Range header '{header}': the last byte is before the first")
    if len(parsed) > 1:
        return None
    match = parsed[0]
    assert match is not None
    first_text, last_text = match.group(1), match.group(2)
    unsatisfiable = RangeNotSatisfiable(
        f"Range '{header}' is outside the file's {length} bytes",
        headers={"Content-Range": f"bytes */{length}"},
    )
    if not first_text:
        suffix = int(last_text)
        if suffix == 0 or length == 0:
            raise unsatisfiable
        return max(length - suffix, 0), length - 1
    first = int(first_text)
    if first >= length:
        raise unsatisfiable
    last = min(int(last_text), length - 1) if last_text else length - 1
    return first, last
