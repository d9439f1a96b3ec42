"""Scenario faults, in one place: what a fault is, which one a request suffers (and counting it), and
applying it. A fault answers for the service (a status, headers, a body), closes the connection, or delays
the request; delays go through `Faults.sleep`, the one seam tests replace."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator import jsonio
from emulator.errors import InjectedFault

# Only these may be delayed on a real clock, and never for longer than this.
MAX_DELAY_SECONDS = 30.0
# All of a fault's `respond.headers`, names and values together: far under any client's limit on one line.
MAX_FAULT_HEADERS_BYTES = 4096
# Headers a fault may not set. Framing and hop-by-hop headers describe the connection, not the answer:
# sent with an answer they do not match, they desynchronise the client's connection. The emulator sets
# Content-Type (the body is always JSON), Content-Encoding (never encoded) and x-request-id (the request's).
FORBIDDEN_FAULT_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "x-request-id",
    }
)
# RFC 9110 section 5.1: a field name is a token; section 5.5: a value is visible ASCII, spaces and tabs.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\x20-\x7e\t]*")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    operation: str
    times: int
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # The body as JSON bytes: a parsed `[{}, {}, ...]` would hold ~25x its text for as long as the scenario.
    body_json: bytes | None = None
    delay_seconds: float = 0.0
    drop: bool = False

    @property
    def body(self) -> Any | None:
        """The body a scenario wrote (None: the service's own error body)."""
        return None if self.body_json is None else json.loads(self.body_json)

    @property
    def refuses(self) -> bool:
        """The request is not served (an answer of the fault's own, or a dropped connection)."""
        return self.drop or self.status is not None


class DropConnection(Exception):
    """A fault that closes the connection without an answer."""


class FaultError(ValueError):
    """A fault entry that would not make a valid HTTP answer: where inside the entry, and why."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def parse_fault(raw: Mapping[str, Any]) -> Fault:
    """A fault from its scenario entry, already checked against the scenario schema and as plain data
    (`yamldoc.plain_data_problem`); FaultError when its answer would not be valid HTTP."""
    respond = raw.get("respond", {})
    status = respond.get("status")
    headers = respond.get("headers", {})
    _check_headers(headers)
    body = respond.get("body")
    return Fault(
        operation=raw["operation"],
        times=int(raw.get("times", 1)),  # the schema's integers include 2.0
        status=None if status is None else int(status),
        headers=dict(headers),
        body_json=None if body is None else _encoded_body(body),
        delay_seconds=min(float(raw.get("delay", {}).get("seconds", 0.0)), MAX_DELAY_SECONDS),
        drop=raw.get("drop", False),
    )


def _check_headers(headers: Mapping[str, str]) -> None:
    total = 0
    for name, value in headers.items():
        where = f"respond.headers.{name}"
        if not _TOKEN.fullmatch(name):
            raise FaultError(
                where, "not a valid header name (an RFC 9110 token: letters, digits, !#$%&'*+-.^_`|~)"
            )
        lowered = name.lower()
        if lowered in FORBIDDEN_FAULT_HEADERS or lowered.startswith("proxy-"):
            raise FaultError(
                where,
                "a fault may not set this header (framing and hop-by-hop headers would desynchronise the "
                "connection; Content-Type, Content-Encoding and x-request-id are the emulator's)",
            )
        if not _FIELD_VALUE.fullmatch(value):
            raise FaultError(where, "a header value is visible ASCII, spaces and tabs (no CR, LF or NUL)")
        total += len(name) + len(value)
    if total > MAX_FAULT_HEADERS_BYTES:
        raise FaultError(
            "respond.headers", f"{total} bytes of names and values; at most {MAX_FAULT_HEADERS_BYTES}"
        )


def _encoded_body(body: Any) -> bytes:
    """The body as it is sent: it must encode, and decode to itself (orjson writes NaN as null)."""
    try:
        encoded = jsonio.dumps(body)
    except TypeError as exc:  # an integer past 64 bits, JSON nested past 255 levels
        raise FaultError("respond.body", f"cannot be sent as JSON ({exc})") from None
    if json.loads(encoded) != body:
        raise FaultError("respond.body", "does not survive JSON encoding")
    return encoded


def by_operation(faults: tuple[Fault, ...]) -> dict[str, tuple[Fault, ...]]:
    grouped: dict[str, list[Fault]] = {}
    for fault in faults:
        grouped.setdefault(fault.operation, []).append(fault)
    return {operation: tuple(listed) for operation, listed in grouped.items()}


def take(faults: tuple[Fault, ...], hits: dict[Any, int], key: Hashable) -> Fault | None:
    """The fault a request suffers: faults fire in order, each `times` times; `hits[key]` counts what has
    fired so far and is advanced here."""
    if not faults:
        return None
    fired = hits.get(key, 0)
    budget = 0
    for fault in faults:
        budget += fault.times
        if fired < budget:
            hits[key] = fired + 1
            return fault
    return None


class Faults:
    """Applies the fault a request suffers."""

    def __init__(self, sleep: Sleep = asyncio.sleep):
        self.sleep = sleep

    async def apply(self, fault: Fault | None) -> None:
        """Delay, then drop or answer for the service; a delay alone lets the request go on."""
        if fault is None:
            return
        if fault.delay_seconds:
            await self.sleep(fault.delay_seconds)
        if fault.drop:
            raise DropConnection()
        if fault.status is not None:
            raise InjectedFault(fault.status, dict(fault.headers), fault.body)
