"""Scenario faults, in one place: what a fault is, which one a request suffers (and counting it), and
applying it. A fault answers for the service (a status, headers, a body), closes the connection, or delays
the request; delays go through `Faults.sleep`, the one seam tests replace."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import InjectedFault

# Only these may be delayed on a real clock, and never for longer than this.
MAX_DELAY_SECONDS = 30.0

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    operation: str
    times: int
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any | None = None
    delay_seconds: float = 0.0
    drop: bool = False

    @property
    def refuses(self) -> bool:
        """The request is not served (an answer of the fault's own, or a dropped connection)."""
        return self.drop or self.status is not None


class DropConnection(Exception):
    """A fault that closes the connection without an answer."""


def parse_fault(raw: Mapping[str, Any]) -> Fault:
    """A fault from its scenario entry (already checked against the scenario schema)."""
    respond = raw.get("respond", {})
    return Fault(
        operation=raw["operation"],
        times=raw.get("times", 1),
        status=respond.get("status"),
        headers=respond.get("headers", {}),
        body=respond.get("body"),
        delay_seconds=min(raw.get("delay", {}).get("seconds", 0.0), MAX_DELAY_SECONDS),
        drop=raw.get("drop", False),
    )


def by_operation(faults: tuple[Fault, ...]) -> dict[str, tuple[Fault, ...]]:
    grouped: dict[str, tuple[Fault, ...]] = {}
    for fault in faults:
        grouped[fault.operation] = (*grouped.get(fault.operation, ()), fault)
    return grouped


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
