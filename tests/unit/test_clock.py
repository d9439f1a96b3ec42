"""The emulator clock: manual (frozen until advanced) and real (wall time times speed)."""

from __future__ import annotations

import math

import pytest

from emulator import clock as clock_module
from emulator.clock import Clock

START_MS = 1_700_000_000_000


def test_manual_clock_is_frozen_at_its_start_instant() -> None:
    clock = Clock("manual", start_ms=START_MS)
    assert clock.now_ms() == START_MS
    assert clock.now_ms() == START_MS
    assert clock.start_ms == START_MS


def test_manual_clock_moves_only_when_advanced_and_reports_the_new_now() -> None:
    clock = Clock("manual", start_ms=START_MS)
    assert clock.advance(1.5) == START_MS + 1500
    assert clock.advance(0) == START_MS + 1500
    assert clock.advance(3600) == START_MS + 1500 + 3_600_000
    assert clock.now_ms() == START_MS + 3_601_500


def test_sub_millisecond_advances_round_to_the_nearest_millisecond() -> None:
    clock = Clock("manual", start_ms=START_MS)
    assert clock.advance(0.0004) == START_MS
    assert clock.advance(0.0006) == START_MS + 1


@pytest.mark.parametrize("seconds", [-1, -0.001, math.nan, math.inf, -math.inf])
def test_the_clock_never_moves_backwards_or_by_a_non_number(seconds: float) -> None:
    clock = Clock("manual", start_ms=START_MS)
    with pytest.raises(ValueError):
        clock.advance(seconds)
    assert clock.now_ms() == START_MS


def test_reset_brings_a_manual_clock_back_to_its_start_instant() -> None:
    clock = Clock("manual", start_ms=START_MS)
    clock.advance(500)
    clock.reset()
    assert clock.now_ms() == START_MS


@pytest.mark.parametrize("speed", [0, -1, math.nan, math.inf])
def test_speed_must_be_a_positive_number(speed: float) -> None:
    with pytest.raises(ValueError):
        Clock("real", speed=speed)


class FakeTime:
    """Stands in for the `time` module inside emulator.clock, so the real clock is tested without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = 1_234_567.891

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall


def test_real_clock_runs_with_wall_time_times_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    clock = Clock("real", speed=60, start_ms=START_MS)
    assert clock.now_ms() == START_MS
    fake.now += 2.5
    assert clock.now_ms() == START_MS + 150_000  # 2.5 s at 60x = 2.5 minutes


def test_real_clock_can_also_be_advanced_and_reset_forgets_the_advance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    clock = Clock("real", speed=1, start_ms=START_MS)
    fake.now += 1
    assert clock.advance(10) == START_MS + 11_000
    clock.reset()
    assert clock.now_ms() == START_MS + 1000  # keeps running from wall time


def test_real_clock_defaults_to_the_wall_clock_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock_module, "time", FakeTime())
    clock = Clock("real")
    assert clock.start_ms == 1_234_567_891
    assert clock.mode == "real"
    assert clock.speed == 1.0


# -- state file: state() and restore() --------------------------------------------------------------------


def test_a_manual_clock_comes_back_at_the_instant_it_was_saved_at(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    clock = Clock("manual", start_ms=START_MS)
    clock.advance(90.5)
    state = clock.state()
    fake.now += 3600
    fake.wall += 3600  # down for an hour
    again = Clock("manual", start_ms=START_MS + 5)
    again.restore(state)()
    assert again.now_ms() == START_MS + 90_500
    again.reset()
    assert again.now_ms() == START_MS  # the saved start instant, not the new clock's


def test_a_real_clock_comes_back_as_if_it_had_kept_running(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    clock = Clock("real", speed=10, start_ms=START_MS)
    clock.advance(100)
    fake.now += 0.5
    fake.wall += 0.5
    assert clock.now_ms() == START_MS + 100_000 + 5_000
    state = clock.state()
    fake.now += 60  # a minute of wall time until the next start (monotonic time is per process)
    fake.wall += 60
    again = Clock("real", speed=10)
    again.restore(state)()
    assert again.now_ms() == START_MS + 100_000 + 5_000 + 600_000
    fake.now += 1
    assert again.now_ms() == START_MS + 100_000 + 5_000 + 610_000  # and runs on


def test_a_real_clocks_state_does_not_change_as_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """So a save of an idle emulator finds nothing new to write."""
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    clock = Clock("real", start_ms=START_MS)
    state = clock.state()
    fake.now += 30
    fake.wall += 30
    assert clock.state() == state
    again = Clock("real")
    again.restore(state)()
    assert again.state() == state


def test_a_wall_clock_set_back_past_the_run_restarts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run is kept as the wall time it began at: a machine clock set back before it counts as no run
    (never as a negative one)."""
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    clock = Clock("real", start_ms=START_MS)
    clock.advance(5)
    fake.now += 10
    fake.wall += 10
    state = clock.state()
    fake.wall -= 3600
    again = Clock("real")
    again.restore(state)()
    assert again.now_ms() == START_MS + 5_000
    fake.now += 1
    assert again.now_ms() == START_MS + 6_000


@pytest.mark.parametrize(
    "state",
    [{}, {"startMs": "x", "advancedMs": 0, "startedWallMs": 0}, {"startMs": 1, "advancedMs": None}],
)
def test_a_malformed_clock_state_is_refused_before_anything_changes(state: dict[str, object]) -> None:
    clock = Clock("manual", start_ms=START_MS)
    with pytest.raises((KeyError, TypeError, ValueError)):
        clock.restore(state)
    assert clock.now_ms() == START_MS
