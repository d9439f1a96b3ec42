"""HTTP `Range` and `If-Range` headers of file downloads: the one byte range a request asks for (RFC 9110
§14, §13.1.5)."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

from emulator.errors import BadRequest, RangeNotSatisfiable

# ASCII digits only: `\d` also matches other scripts' digits (Arabic-Indic ones, say), which are not HTTP.
_RANGE = re.compile(r"^[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*$")
# Past any file the emulator can serve: a position with more digits is treated as this (a first byte there
# is unsatisfiable, a last byte or suffix there means "to the end"), so a 5,000-digit number never reaches
# int(), whose string conversion is quadratic and refuses more than 4,300 digits.
_MAX_DIGITS = 18
BEYOND = 10**_MAX_DIGITS


def byte_range(header: str | None, length: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte a `Range` header asks for; None for the whole file.

    One range only: a multi-range request gets the whole file (RFC 9110 lets a server ignore Range).
    Malformed -> 400; a range starting at or beyond the end -> 416.
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        raise BadRequest(
            f"Invalid Range header '{_shown(header)}': expected bytes=FIRST-LAST, FIRST- or -SUFFIX"
        )
    parts = spec.split(",")
    parsed = [_RANGE.match(part) for part in parts]
    for match in parsed:
        if match is None or not (match.group(1) or match.group(2)):
            raise BadRequest(
                f"Invalid Range header '{_shown(header)}': expected bytes=FIRST-LAST, FIRST- or -SUFFIX"
            )
        if match.group(1) and match.group(2) and _number(match.group(2)) < _number(match.group(1)):
            raise BadRequest(f"Invalid Range header '{_shown(header)}': the last byte is before the first")
    if len(parsed) > 1:
        return None
    match = parsed[0]
    assert match is not None
    first_text, last_text = match.group(1), match.group(2)
    unsatisfiable = RangeNotSatisfiable(
        f"Range '{_shown(header)}' is outside the file's {length} bytes",
        headers={"Content-Range": f"bytes */{length}"},
    )
    if not first_text:
        suffix = _number(last_text)
        if suffix == 0 or length == 0:
            raise unsatisfiable
        return max(length - suffix, 0), length - 1
    first = _number(first_text)
    if first >= length:
        raise unsatisfiable
    last = min(_number(last_text), length - 1) if last_text else length - 1
    return first, last


def if_range_holds(header: str | None, etag: str, last_modified: str) -> bool:
    """Whether a `Range` may be honoured under this `If-Range` (RFC 9110 §13.1.5): without one, yes; with
    an entity tag, only when it is the file's (strong comparison: a weak tag never matches); with a date,
    only when it is exactly the file's Last-Modified. Otherwise the whole file is sent (200)."""
    if header is None:
        return True
    value = header.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag
    try:
        return parsedate_to_datetime(value) == parsedate_to_datetime(last_modified)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False  # not a date we can read: the validator does not match


def _number(digits: str) -> int:
    significant = digits.lstrip("0")
    return BEYOND if len(significant) > _MAX_DIGITS else int(significant or "0")


def _shown(header: str) -> str:
    """The header as an error message quotes it: a 5,000-digit value is not worth echoing whole."""
    return header if len(header) <= 100 else header[:100] + "..."
