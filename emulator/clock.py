"""The emulator clock: the only source of "now" (epoch milliseconds) for jobs, tokens and timestamps."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from emulator.events import CLOCK, EventHub
from emulator.options import MAX_SPEED, ClockMode

# Every time the emulator shows is an RFC 3339 instant from 1970 to the end of year 9999.
MIN_TIME_MS = 0
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_TIME = "9999-12-31T23:59:59.999Z"


def check_speed(speed: float) -> float:
    """`speed` when it is a finite number in (0, MAX_SPEED]; ValueError naming --speed otherwise."""
    if not (isinstance(speed, int | float) and math.isfinite(speed) and 0 < speed <= MAX_SPEED):
        raise ValueError(f"--speed must be a number above 0 and at most {MAX_SPEED:,.0f}, not {speed!r}")
    return float(speed)


def check_time_ms(ms: int, what: str) -> int:
    if not (isinstance(ms, int) and MIN_TIME_MS <= ms <= MAX_TIME_MS):
        raise ValueError(f"{what} must be an instant from 1970 to {MAX_TIME}, not {ms!r}")
    return ms


class Clock:
    """`real`: wall time scaled by `speed` from the start instant. `manual`: frozen until advanced. Either
    stays within MIN_TIME_MS..MAX_TIME_MS: a real clock stops at the end of year 9999."""

    def __init__(
        self,
        mode: ClockMode = "real",
        speed: float = 1.0,
        start_ms: int | None = None,
        events: EventHub | None = None,
    ):
        speed = check_speed(speed)
        self._events = events or EventHub()
        if start_ms is not None:
            check_time_ms(start_ms, "the start time")
        self.mode: ClockMode = mode
        self.speed = speed
        self._start_ms = start_ms if start_ms is not None else int(time.time() * 1000)
        self._offset_ms = 0
        self._started_monotonic = time.monotonic()
        # The same instant on the wall clock: what a state file keeps of a real clock's run (see state()).
        self._started_wall_ms = int(time.time() * 1000)

    @property
    def start_ms(self) -> int:
        return self._start_ms

    def now_ms(self) -> int:
        elapsed = 0.0
        if self.mode == "real":
            elapsed = (time.monotonic() - self._started_monotonic) * 1000 * self.speed
        return min(self._start_ms + self._offset_ms + int(elapsed), MAX_TIME_MS)

    def advance(self, seconds: float) -> int:
        """Move the clock forward (either mode); returns the new now. ValueError (and no move) for a
        negative or non-finite number, or one that would pass MAX_TIME_MS."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"the clock only moves forward by a finite number of seconds, not {seconds}")
        step_ms = round(seconds * 1000)
        if self.now_ms() + step_ms > MAX_TIME_MS:
            raise ValueError(
                f"advancing by {seconds} s would take the clock past {MAX_TIME}, the last instant it shows"
            )
        self._offset_ms += step_ms
        self._events.publish(CLOCK)
        return self.now_ms()

    def reset(self) -> None:
        """Forget advances: a manual clock goes back to its start instant; a real one keeps running."""
        self._offset_ms = 0
        self._events.publish(CLOCK)

    def state(self) -> dict[str, Any]:
        """What a restart keeps. A real clock runs on while the emulator is down: it keeps the wall time its
        run started at, which (unlike "now") stays the same from one save to the next."""
        return {
            "startMs": self._start_ms,
            "advancedMs": self._offset_ms,
            "startedWallMs": self._started_wall_ms,
        }

    def restore(self, state: Mapping[str, Any]) -> Callable[[], None]:
        """Check a saved `state()`; the returned commit puts it in place (it cannot fail). A manual clock
        comes back at the instant it was saved at; a real one as if it had run all along (at its speed)."""
        start_ms = check_time_ms(state["startMs"], "clock.startMs")
        offset_ms = check_time_ms(state["advancedMs"], "clock.advancedMs")
        started_wall_ms = check_time_ms(state["startedWallMs"], "clock.startedWallMs")
        check_time_ms(start_ms + offset_ms, "clock.startMs + clock.advancedMs")

        def commit() -> None:
            self._start_ms, self._offset_ms = start_ms, offset_ms
            wall_ms = int(time.time() * 1000)
            self._started_wall_ms = min(started_wall_ms, wall_ms)  # a wall clock set back: no time ran
            self._started_monotonic = time.monotonic() - (wall_ms - self._started_wall_ms) / 1000

        return commit
