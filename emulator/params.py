"""Query-string parsing shared by the services: clear 400s for bad numbers."""

from __future__ import annotations

from collections.abc import Mapping

from emulator.errors import BadRequest


def optional_int(params: Mapping[str, str], name: str, *, minimum: int = 0) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Query parameter '{name}' must be an integer, got '{raw}'") from None
    if value < minimum:
        raise BadRequest(f"Query parameter '{name}' must be >= {minimum}, got {value}")
    return value


def int_param(params: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    value = optional_int(params, name, minimum=minimum)
    return default if value is None else value
