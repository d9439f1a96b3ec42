"""The emulator's one JSON encoder: compact UTF-8 bytes (non-ASCII as itself), via orjson."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """Compact JSON bytes; TypeError for what JSON cannot hold (orjson writes NaN and Infinity as null)."""
    return orjson.dumps(value)
