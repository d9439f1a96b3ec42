"""The emulator clock: the only source of "now" (epoch milliseconds) for jobs, tokens and timestamps."""

from __future__ import annotations

import math
import time

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
