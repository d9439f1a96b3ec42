"""RFC 3339 timestamps as the requests carry them, to epoch milliseconds."""

from __future__ import annotations

from datetime import datetime


def rfc3339_ms(text: str) -> int:
    """Epoch milliseconds; ValueError for an impossible date or a missing UTC offset."""
    moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    if moment.tzinfo is None:
        raise ValueError(f"RFC 3339 needs a UTC offset or Z: '{text}'")
    return int(moment.timestamp() * 1000)
