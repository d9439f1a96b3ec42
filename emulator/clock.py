"""The emulator clock: the only source of "now" (epoch milliseconds) for jobs, tokens and timestamps."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from emulator.options import ClockMode


class Clock:
    """`real`: wall time scaled by `speed` from the start instant. `manual`: frozen until advanced."""

    def __init__(self, mode: ClockMode = "real", speed: float = 1.0, start_ms: int | None = None):
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError("speed must be a positive number")
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
        return self._start_ms + self._offset_ms + int(elapsed)

    def advance(self, seconds: float) -> int:
        """Move the clock forward (either mode); returns the new now."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"the clock only moves forward by a finite number of seconds, not {seconds}")
        self._offset_ms += round(seconds * 1000)
        return self.now_ms()

    def reset(self) -> None:
        """Forget advances: a manual clock goes back to its start instant; a real one keeps running."""
        self._offset_ms = 0

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
        start_ms, offset_ms = int(state["startMs"]), int(state["advancedMs"])
        started_wall_ms = int(state["startedWallMs"])

        def commit() -> None:
            self._start_ms, self._offset_ms = start_ms, offset_ms
            wall_ms = int(time.time() * 1000)
            self._started_wall_ms = min(started_wall_ms, wall_ms)  # a wall clock set back: no time ran
            self._started_monotonic = time.monotonic() - (wall_ms - self._started_wall_ms) / 1000

        return commit
