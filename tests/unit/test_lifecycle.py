"""The export-job state machine as a pure function of (steps, creation instant, clock, polls)."""

from __future__ import annotations

from functools import cache
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import lifecycle
from emulator.lifecycle import (
    CANCELLED,
    DATASET_WRITE,
    FAILED,
    NEW,
    PROCESSING,
    PROFILE_EXPORT,
    SUCCEEDED,
    TERMINAL,
    JobError,
    Progress,
    Step,
)
from emulator.scenarios import Scenario, bundled

T0 = 1_700_000_000_000
S = 1000  # one second in ms

Steps = tuple[Step, ...]


@cache
def scenario(name: str) -> Scenario:
    return {s.name: s for s in bundled()}[name]


def steps_of(name: str) -> Steps:
    return scenario(name).steps


def poll(steps: Steps, progress: Progress, at_ms: int, times: int = 1) -> Progress:
    for _ in range(times):
        progress = lifecycle.advance(steps, progress, at_ms, poll=True)
        check_timestamps(progress)
    return progress


def read(steps: Steps, progress: Progress, at_ms: int) -> Progress:
    progress = lifecycle.advance(steps, progress, at_ms)
    check_timestamps(progress)
    return progress


def history(progress: Progress) -> list[tuple[str, int]]:
    """(status, instant relative to T0) of every transition."""
    return [(t.status, t.at_ms - T0) for t in progress.transitions]


def check_timestamps(progress: Progress) -> None:
    """Every timing rule a job's JSON relies on, for any progress at all."""
    timings = lifecycle.timings(progress)
    instants = [t.at_ms for t in progress.transitions]
    assert instants == sorted(instants), "transitions go back in time"
    assert timings.total.start_ms == progress.created_ms == instants[0]
    assert progress.updated_ms == instants[-1]
    if progress.is_terminal:
        assert timings.total.end_ms == progress.updated_ms
    else:
        assert timings.total.end_ms is None
    intervals = [timings.total, timings.profile_export, timings.dataset_write]
    for interval in intervals:
        if interval is None:
            continue
        shown = interval.to_json()
        assert shown["startTimeInMs"] == interval.start_ms
        if interval.end_ms is None:
            assert set(shown) == {"startTimeInMs"}
        else:
            assert shown["endTimeInMs"] == interval.end_ms
            assert shown["totalTimeInMs"] == shown["endTimeInMs"] - shown["startTimeInMs"] >= 0
        assert timings.total.start_ms <= interval.start_ms
        assert interval.end_ms is None or interval.end_ms <= progress.updated_ms
    # Presence, as lifecycle.timings documents it.
    processing = [t.at_ms for t in progress.transitions if t.status == PROCESSING]
    writing = [t.at_ms for t in progress.transitions if t.phase == DATASET_WRITE]
    succeeded = progress.status == SUCCEEDED
    assert (timings.profile_export is not None) == (bool(processing) or succeeded)
    assert (timings.dataset_write is not None) == (bool(writing) or succeeded)
    if timings.profile_export is not None:
        assert timings.profile_export.start_ms == (processing[0] if processing else progress.updated_ms)
    if timings.dataset_write is not None:
        write_start = writing[0] if writing else progress.updated_ms
        assert timings.dataset_write.start_ms == write_start
        assert timings.profile_export is not None
        assert timings.profile_export.end_ms == write_start
        assert timings.dataset_write.end_ms == (progress.updated_ms if progress.is_terminal else None)
    elif timings.profile_export is not None:
        assert timings.profile_export.end_ms == (progress.updated_ms if progress.is_terminal else None)


def steps(*specs: tuple[str, int | None, float | None]) -> Steps:
    """(status, after polls, after seconds) for each step."""
    return tuple(Step(status, polls, seconds) for status, polls, seconds in specs)


# -- the bundled scenarios ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["success", "empty", "flaky-gateway", "partial-errors"])
def test_succeeding_scenarios_move_one_step_per_poll(name: str) -> None:
    flow = steps_of(name)
    progress = lifecycle.start(flow, T0)
    assert progress.status == NEW
    progress = poll(flow, progress, T0 + 100)
    assert progress.status == PROCESSING
    progress = poll(flow, progress, T0 + 200)
    assert history(progress) == [(NEW, 0), (PROCESSING, 100), (SUCCEEDED, 200)]


@pytest.mark.parametrize("name", ["success", "empty", "flaky-gateway", "partial-errors"])
def test_succeeding_scenarios_move_every_five_seconds_without_polls(name: str) -> None:
    flow = steps_of(name)
    progress = lifecycle.start(flow, T0)
    assert read(flow, progress, T0 + 5 * S - 1).status == NEW
    assert read(flow, progress, T0 + 5 * S).status == PROCESSING
    assert read(flow, progress, T0 + 10 * S - 1).status == PROCESSING
    progress = read(flow, progress, T0 + 10 * S)
    assert history(progress) == [(NEW, 0), (PROCESSING, 5 * S), (SUCCEEDED, 10 * S)]


def test_success_reaches_succeeded_by_the_second_get() -> None:
    flow = steps_of("success")
    progress = poll(flow, lifecycle.start(flow, T0), T0, times=2)
    assert progress.status == SUCCEEDED
    assert progress.updated_ms == T0


def test_success_reaches_succeeded_within_ten_seconds_on_the_clock_alone() -> None:
    flow = steps_of("success")
    progress = read(flow, lifecycle.start(flow, T0), T0 + 10 * S)
    assert progress.status == SUCCEEDED


def test_success_shows_export_and_write_timings_once_succeeded() -> None:
    flow = steps_of("success")
    progress = poll(flow, lifecycle.start(flow, T0), T0 + 2 * S)
    timings = lifecycle.timings(progress)
    assert timings.profile_export is not None
    assert timings.profile_export.to_json() == {"startTimeInMs": T0 + 2 * S}
    assert timings.dataset_write is None
    progress = poll(flow, progress, T0 + 3 * S)
    timings = lifecycle.timings(progress)
    assert timings.total.to_json() == {
        "startTimeInMs": T0,
        "endTimeInMs": T0 + 3 * S,
        "totalTimeInMs": 3 * S,
    }
    assert timings.profile_export is not None and timings.dataset_write is not None
    assert timings.profile_export.to_json()["totalTimeInMs"] == S
    assert timings.dataset_write.to_json() == {
        "startTimeInMs": T0 + 3 * S,
        "endTimeInMs": T0 + 3 * S,
        "totalTimeInMs": 0,
    }


def test_failure_fails_on_the_second_poll_with_adobes_codes() -> None:
    flow = steps_of("failure")
    progress = poll(flow, lifecycle.start(flow, T0), T0 + S)
    assert progress.status == PROCESSING
    assert progress.errors == ()
    progress = poll(flow, progress, T0 + 2 * S)
    assert progress.status == FAILED
    assert [e.code for e in progress.errors] == ["0090000009", "unknown"]
    assert progress.errors[0].msg.startswith("Error writing profiles to output path")
    assert progress.errors[1].to_json() == {
        "code": "unknown",
        "msg": "Job aborted.",
        "callStack": "org.apache.spark.SparkException: Job aborted.",
    }
    timings = lifecycle.timings(progress)
    assert timings.dataset_write is None  # like Adobe's FAILED example
    assert timings.profile_export is not None
    assert timings.profile_export.end_ms == T0 + 2 * S


def test_failure_also_fails_on_the_clock_alone() -> None:
    flow = steps_of("failure")
    progress = read(flow, lifecycle.start(flow, T0), T0 + 3600 * S)
    assert history(progress) == [(NEW, 0), (PROCESSING, 5 * S), (FAILED, 10 * S)]


def test_partial_errors_succeeds_with_an_errors_entry() -> None:
    flow = steps_of("partial-errors")
    progress = poll(flow, lifecycle.start(flow, T0), T0, times=2)
    assert progress.status == SUCCEEDED
    assert [e.code for e in progress.errors] == ["0100000003"]


def test_stuck_stays_processing_whatever_happens() -> None:
    flow = steps_of("stuck")
    progress = poll(flow, lifecycle.start(flow, T0), T0)
    assert progress.status == PROCESSING
    progress = poll(flow, progress, T0 + 365 * 24 * 3600 * S, times=1000)
    assert history(progress) == [(NEW, 0), (PROCESSING, 0)]
    assert progress.polls_in_step == 1000


def test_slow_takes_sixteen_minutes_and_polls_do_not_hurry_it() -> None:
    flow = steps_of("slow")
    progress = poll(flow, lifecycle.start(flow, T0), T0 + 59 * S, times=50)
    assert progress.status == NEW
    progress = poll(flow, progress, T0 + 60 * S, times=50)
    assert progress.status == PROCESSING
    assert progress.transitions[-1].phase == PROFILE_EXPORT
    progress = poll(flow, progress, T0 + 659 * S, times=50)
    assert len(progress.transitions) == 2
    progress = poll(flow, progress, T0 + 660 * S)
    assert progress.transitions[-1].phase == DATASET_WRITE
    assert progress.status == PROCESSING
    progress = poll(flow, progress, T0 + 959 * S, times=50)
    assert progress.status == PROCESSING
    progress = poll(flow, progress, T0 + 960 * S)
    assert history(progress) == [(NEW, 0), (PROCESSING, 60 * S), (PROCESSING, 660 * S), (SUCCEEDED, 960 * S)]
    timings = lifecycle.timings(progress)
    assert timings.profile_export is not None and timings.dataset_write is not None
    assert timings.profile_export.to_json()["totalTimeInMs"] == 600 * S
    assert timings.dataset_write.to_json()["totalTimeInMs"] == 300 * S
    assert timings.total.to_json()["totalTimeInMs"] == 960 * S


def test_slow_read_once_at_the_end_shows_every_due_instant() -> None:
    flow = steps_of("slow")
    progress = read(flow, lifecycle.start(flow, T0), T0 + 24 * 3600 * S)
    assert history(progress) == [(NEW, 0), (PROCESSING, 60 * S), (PROCESSING, 660 * S), (SUCCEEDED, 960 * S)]


# -- each kind of transition --------------------------------------------------------------------


def test_polls_only_fires_on_the_nth_poll_and_never_on_time() -> None:
    flow = steps((NEW, None, None), (SUCCEEDED, 3, None))
    progress = read(flow, lifecycle.start(flow, T0), T0 + 10**9)
    assert progress.status == NEW
    progress = poll(flow, progress, T0 + 10**9, times=2)
    assert (progress.status, progress.polls_in_step) == (NEW, 2)
    progress = poll(flow, progress, T0 + 10**9 + 7)
    assert history(progress) == [(NEW, 0), (SUCCEEDED, 10**9 + 7)]


def test_seconds_only_fires_at_the_due_instant_and_polls_do_not_count() -> None:
    flow = steps((NEW, None, None), (SUCCEEDED, None, 30))
    progress = poll(flow, lifecycle.start(flow, T0), T0 + 30 * S - 1, times=100)
    assert progress.status == NEW
    progress = poll(flow, progress, T0 + 30 * S)
    assert history(progress) == [(NEW, 0), (SUCCEEDED, 30 * S)]


def test_polls_and_seconds_polls_first() -> None:
    flow = steps((NEW, None, None), (SUCCEEDED, 2, 30))
    progress = poll(flow, lifecycle.start(flow, T0), T0 + S, times=2)
    assert history(progress) == [(NEW, 0), (SUCCEEDED, S)]


def test_polls_and_seconds_seconds_first_even_when_read_by_a_poll_later() -> None:
    flow = steps((NEW, None, None), (PROCESSING, 2, 30), (SUCCEEDED, 2, 30))
    progress = poll(flow, lifecycle.start(flow, T0), T0 + S)  # one poll: not enough
    progress = poll(flow, progress, T0 + 45 * S)
    # The clock fired PROCESSING at its due instant; this poll is the first toward SUCCEEDED.
    assert history(progress) == [(NEW, 0), (PROCESSING, 30 * S)]
    assert progress.polls_in_step == 1
    progress = poll(flow, progress, T0 + 46 * S)
    assert history(progress) == [(NEW, 0), (PROCESSING, 30 * S), (SUCCEEDED, 46 * S)]


def test_zero_second_steps_happen_at_the_previous_instant() -> None:
    flow = steps((NEW, None, None), (PROCESSING, None, 0), (SUCCEEDED, None, 0))
    progress = read(flow, lifecycle.start(flow, T0), T0)
    assert history(progress) == [(NEW, 0), (PROCESSING, 0), (SUCCEEDED, 0)]


def test_a_zero_second_step_follows_a_poll_triggered_one_at_once() -> None:
    flow = steps((NEW, None, None), (PROCESSING, 1, None), (SUCCEEDED, None, 0))
    progress = poll(flow, lifecycle.start(flow, T0), T0 + 7 * S)
    assert history(progress) == [(NEW, 0), (PROCESSING, 7 * S), (SUCCEEDED, 7 * S)]


def test_fractional_seconds_are_milliseconds() -> None:
    flow = steps((NEW, None, None), (SUCCEEDED, None, 0.25))
    progress = lifecycle.start(flow, T0)
    assert read(flow, progress, T0 + 249).status == NEW
    assert history(read(flow, progress, T0 + 250)) == [(NEW, 0), (SUCCEEDED, 250)]


def test_reading_without_a_poll_never_counts() -> None:
    flow = steps((NEW, None, None), (SUCCEEDED, 1, None))
    progress = lifecycle.start(flow, T0)
    for at in range(100):
        progress = read(flow, progress, T0 + at * S)
    assert (progress.status, progress.polls_in_step) == (NEW, 0)


# -- how polls are counted ----------------------------------------------------------------------


def test_the_poll_that_triggers_a_step_does_not_count_toward_the_next() -> None:
    flow = steps((NEW, None, None), (PROCESSING, 1, None), (SUCCEEDED, 2, None))
    progress = poll(flow, lifecycle.start(flow, T0), T0 + S)
    assert (progress.status, progress.polls_in_step) == (PROCESSING, 0)
    progress = poll(flow, progress, T0 + 2 * S)
    assert (progress.status, progress.polls_in_step) == (PROCESSING, 1)
    progress = poll(flow, progress, T0 + 3 * S)
    assert history(progress) == [(NEW, 0), (PROCESSING, S), (SUCCEEDED, 3 * S)]


def test_a_poll_counts_toward_the_step_the_job_waits_for() -> None:
    # Reached by time at 5 s, so the poll at 6 s is the job's first poll while PROCESSING.
    flow = steps((NEW, None, None), (PROCESSING, None, 5), (SUCCEEDED, 1, None))
    progress = poll(flow, lifecycle.start(flow, T0), T0 + 6 * S)
    assert history(progress) == [(NEW, 0), (PROCESSING, 5 * S), (SUCCEEDED, 6 * S)]


def test_polls_made_while_waiting_for_a_timed_step_do_not_carry_over() -> None:
    flow = steps((NEW, None, None), (PROCESSING, None, 5), (SUCCEEDED, 2, None))
    progress = poll(flow, lifecycle.start(flow, T0), T0 + S, times=5)
    assert (progress.status, progress.polls_in_step) == (NEW, 5)
    progress = read(flow, progress, T0 + 5 * S)
    assert (progress.status, progress.polls_in_step) == (PROCESSING, 0)
    progress = poll(flow, progress, T0 + 6 * S)
    assert progress.status == PROCESSING
    progress = poll(flow, progress, T0 + 7 * S)
    assert progress.status == SUCCEEDED


# -- late reads: timestamps are due instants, never the read time -------------------------------


def test_a_late_read_shows_every_timed_transition_at_its_due_instant() -> None:
    flow = steps((NEW, None, None), (PROCESSING, None, 5), (PROCESSING, None, 7), (SUCCEEDED, None, 11))
    flow = (flow[0], flow[1], Step(PROCESSING, None, 7, DATASET_WRITE), flow[3])
    progress = poll(flow, lifecycle.start(flow, T0), T0 + 3600 * S)
    assert history(progress) == [(NEW, 0), (PROCESSING, 5 * S), (PROCESSING, 12 * S), (SUCCEEDED, 23 * S)]
    timings = lifecycle.timings(progress)
    assert timings.total.to_json()["endTimeInMs"] == T0 + 23 * S
    assert timings.profile_export is not None
    assert timings.profile_export.to_json()["endTimeInMs"] == T0 + 12 * S
    assert timings.dataset_write is not None
    assert timings.dataset_write.to_json()["totalTimeInMs"] == 11 * S


def test_a_late_poll_after_timed_steps_happens_at_the_poll() -> None:
    flow = steps((NEW, None, None), (PROCESSING, None, 5), (SUCCEEDED, 1, None))
    progress = poll(flow, lifecycle.start(flow, T0), T0 + 3600 * S)
    assert history(progress) == [(NEW, 0), (PROCESSING, 5 * S), (SUCCEEDED, 3600 * S)]


def test_reads_in_between_change_nothing() -> None:
    flow = steps_of("slow")
    once = read(flow, lifecycle.start(flow, T0), T0 + 2000 * S)
    often = lifecycle.start(flow, T0)
    for at in range(0, 2000 * S, 7 * S):
        often = read(flow, often, T0 + at)
    often = read(flow, often, T0 + 2000 * S)
    assert often == once


# -- cancel ---------------------------------------------------------------------------------------


def test_cancel_while_new() -> None:
    flow = steps_of("success")
    progress = lifecycle.cancel(lifecycle.start(flow, T0), CANCELLED, (), T0 + S)
    check_timestamps(progress)
    assert history(progress) == [(NEW, 0), (CANCELLED, S)]
    timings = lifecycle.timings(progress)
    assert timings.profile_export is None and timings.dataset_write is None
    assert timings.total.to_json()["totalTimeInMs"] == S


def test_cancel_while_processing() -> None:
    flow = steps_of("stuck")
    progress = poll(flow, lifecycle.start(flow, T0), T0 + S)
    progress = lifecycle.cancel(progress, CANCELLED, (), T0 + 90 * S)
    check_timestamps(progress)
    assert history(progress) == [(NEW, 0), (PROCESSING, S), (CANCELLED, 90 * S)]
    timings = lifecycle.timings(progress)
    assert timings.profile_export is not None
    assert timings.profile_export.to_json()["totalTimeInMs"] == 89 * S
    assert timings.dataset_write is None


def test_cancel_while_writing_the_dataset() -> None:
    flow = steps_of("slow")
    progress = read(flow, lifecycle.start(flow, T0), T0 + 700 * S)
    assert progress.transitions[-1].phase == DATASET_WRITE
    progress = lifecycle.cancel(progress, CANCELLED, (), T0 + 700 * S)
    check_timestamps(progress)
    timings = lifecycle.timings(progress)
    assert timings.profile_export is not None and timings.dataset_write is not None
    assert timings.profile_export.to_json()["endTimeInMs"] == T0 + 660 * S
    assert timings.dataset_write.to_json() == {
        "startTimeInMs": T0 + 660 * S,
        "endTimeInMs": T0 + 700 * S,
        "totalTimeInMs": 40 * S,
    }


def test_cancel_may_end_in_failed_with_errors() -> None:
    flow = steps_of("stuck")
    error = JobError("0100000001", "Cancelled by the user", "")
    progress = lifecycle.cancel(poll(flow, lifecycle.start(flow, T0), T0), FAILED, (error,), T0 + S)
    assert progress.status == FAILED
    assert progress.errors == (error,)


@pytest.mark.parametrize("name", ["success", "failure", "partial-errors"])
def test_cancel_leaves_a_terminal_job_unchanged(name: str) -> None:
    flow = steps_of(name)
    progress = poll(flow, lifecycle.start(flow, T0), T0, times=2)
    assert progress.is_terminal
    assert lifecycle.cancel(progress, CANCELLED, (), T0 + S) is progress


def test_a_cancelled_job_never_moves_again() -> None:
    flow = steps_of("success")
    progress = lifecycle.cancel(lifecycle.start(flow, T0), CANCELLED, (), T0)
    assert poll(flow, progress, T0 + 3600 * S, times=10) == progress


# -- force ----------------------------------------------------------------------------------------


def test_force_pins_a_live_status_against_polls_and_time() -> None:
    flow = steps_of("success")
    progress = lifecycle.force(lifecycle.start(flow, T0), PROCESSING, (), T0 + S)
    assert progress.pinned
    assert progress.transitions[-1].phase == PROFILE_EXPORT
    assert poll(flow, progress, T0 + 3600 * S, times=5) == progress


@pytest.mark.parametrize("status", [SUCCEEDED, FAILED, CANCELLED])
def test_force_to_a_terminal_status(status: str) -> None:
    flow = steps_of("stuck")
    errors = (JobError("0090000009", "forced", "here"),) if status == FAILED else ()
    progress = lifecycle.force(poll(flow, lifecycle.start(flow, T0), T0 + S), status, errors, T0 + 4 * S)
    check_timestamps(progress)
    assert history(progress) == [(NEW, 0), (PROCESSING, S), (status, 4 * S)]
    assert progress.errors == errors


def test_force_processing_during_the_dataset_write_keeps_the_phase() -> None:
    flow = steps_of("slow")
    progress = read(flow, lifecycle.start(flow, T0), T0 + 700 * S)
    progress = lifecycle.force(progress, PROCESSING, (), T0 + 710 * S)
    assert progress.transitions[-1].phase == DATASET_WRITE
    progress = lifecycle.force(progress, SUCCEEDED, (), T0 + 720 * S)
    check_timestamps(progress)


def test_force_processing_on_a_job_that_skipped_the_export_phase_keeps_timings_consistent() -> None:
    flow = (Step(NEW), Step(PROCESSING, None, 1, DATASET_WRITE))
    progress = read(flow, lifecycle.start(flow, T0), T0 + S)
    progress = lifecycle.force(progress, PROCESSING, (), T0 + 2 * S)
    progress = lifecycle.force(progress, SUCCEEDED, (), T0 + 3 * S)
    check_timestamps(progress)


def test_force_leaves_a_terminal_job_unchanged() -> None:
    flow = steps_of("success")
    progress = poll(flow, lifecycle.start(flow, T0), T0, times=2)
    assert lifecycle.force(progress, FAILED, (), T0 + S) is progress


def test_transitions_never_go_back_in_time_even_if_the_clock_did() -> None:
    flow = steps_of("success")
    progress = read(flow, lifecycle.start(flow, T0), T0 + 5 * S)
    progress = poll(flow, progress, T0 + S)
    assert history(progress) == [(NEW, 0), (PROCESSING, 5 * S), (SUCCEEDED, 5 * S)]
    assert lifecycle.cancel(lifecycle.start(flow, T0), CANCELLED, (), T0 - S).updated_ms == T0
    assert lifecycle.force(lifecycle.start(flow, T0), FAILED, (), T0 - S).updated_ms == T0


# -- terminal stability ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["success", "failure", "partial-errors", "empty", "flaky-gateway", "slow"])
def test_terminal_states_never_change(name: str) -> None:
    flow = steps_of(name)
    progress = read(flow, lifecycle.start(flow, T0), T0 + 3600 * S)
    assert progress.status in TERMINAL
    later = poll(flow, progress, T0 + 10 * 3600 * S, times=100)
    assert later == progress
    assert lifecycle.timings(later) == lifecycle.timings(progress)


def test_a_job_created_processing_starts_its_export_at_creation() -> None:
    flow = (Step(PROCESSING), Step(SUCCEEDED, 1, None))
    progress = lifecycle.start(flow, T0)
    timings = lifecycle.timings(progress)
    assert timings.profile_export is not None
    assert timings.profile_export.to_json() == {"startTimeInMs": T0}
    check_timestamps(poll(flow, progress, T0 + S))


def test_a_job_that_succeeds_straight_from_new_shows_zero_length_phases() -> None:
    flow = (Step(NEW), Step(SUCCEEDED, 1, None))
    progress = poll(flow, lifecycle.start(flow, T0), T0 + S)
    timings = lifecycle.timings(progress)
    assert timings.profile_export is not None and timings.dataset_write is not None
    assert timings.profile_export.to_json()["totalTimeInMs"] == 0
    assert timings.dataset_write.to_json()["startTimeInMs"] == T0 + S


def test_errors_of_the_first_step_show_from_creation() -> None:
    flow = (Step(NEW, errors=(JobError("1", "queued behind others", ""),)), Step(SUCCEEDED, 1, None))
    assert [e.code for e in lifecycle.start(flow, T0).errors] == ["1"]


# -- properties over any valid scenario and any schedule of reads ---------------------------------

Event = tuple[int, bool]  # (ms since the previous event, is a poll)
# Same examples on every run (a suite that fails only sometimes helps nobody), nothing written to disk.
PROPERTIES = settings(max_examples=150, deadline=None, derandomize=True, database=None)


@st.composite
def flows(draw: st.DrawFn) -> Steps:
    first = Step(draw(st.sampled_from([NEW, PROCESSING])))
    middle = []
    writing = False
    for _ in range(draw(st.integers(0, 4))):
        status = draw(st.sampled_from([NEW, PROCESSING]))
        phase = None
        if status == PROCESSING:
            writing = writing or draw(st.booleans())
            phase = DATASET_WRITE if writing else None
        middle.append((status, phase))
    last = draw(st.sampled_from([None, SUCCEEDED, FAILED, CANCELLED, PROCESSING]))
    if last is not None:
        middle.append((last, DATASET_WRITE if last == PROCESSING and writing else None))
    result = [first]
    for status, phase in middle:
        polls = draw(st.one_of(st.none(), st.integers(1, 3)))
        seconds = draw(st.one_of(st.none(), st.sampled_from([0, 0.001, 0.5, 2, 30])))
        if polls is None and seconds is None:
            polls = 1
        result.append(Step(status, polls, seconds, phase))
    return tuple(result)


events = st.lists(
    st.tuples(st.sampled_from([0, 0, 1, 250, 999, 1000, 2000, 40_000]), st.booleans()), max_size=30
)


def run(flow: Steps, schedule: list[Event]) -> tuple[list[Progress], list[int]]:
    progress = lifecycle.start(flow, T0)
    states, instants, at = [], [], T0
    for gap, is_poll in schedule:
        at += gap
        before = progress
        progress = lifecycle.advance(flow, progress, at, poll=is_poll)
        if before.is_terminal:
            assert progress is before, "a terminal state changed"
        states.append(progress)
        instants.append(at)
    return states, instants


@PROPERTIES
@given(flows(), events)
def test_any_schedule_keeps_every_timing_rule(flow: Steps, schedule: list[Event]) -> None:
    states, instants = run(flow, schedule)
    for progress, at in zip(states, instants, strict=True):
        check_timestamps(progress)
        # The job follows its steps in order, one transition per step.
        assert [t.status for t in progress.transitions] == [s.status for s in flow[: progress.step + 1]]
        # Nothing is left overdue after a read.
        if progress.step + 1 < len(flow) and not progress.is_terminal:
            nxt = flow[progress.step + 1]
            if nxt.after_ms is not None:
                assert progress.updated_ms + nxt.after_ms > at
            if nxt.after_polls is not None:
                assert progress.polls_in_step < nxt.after_polls
    final = states[-1] if states else lifecycle.start(flow, T0)
    poll_instants = {at for (_, is_poll), at in zip(schedule, instants, strict=True) if is_poll}
    for index, (prev, cur) in enumerate(pairwise(final.transitions), start=1):
        step = flow[index]
        gap = cur.at_ms - prev.at_ms
        if step.after_ms is not None:
            assert gap <= step.after_ms, "a timed step happened after its due instant"
        if step.after_polls is None:
            assert gap == step.after_ms, "a time-only step happened off its due instant"
        elif step.after_ms is None or gap < step.after_ms:
            assert cur.at_ms in poll_instants, "a step fired early without a poll"


@PROPERTIES
@given(flows(), events)
def test_reads_without_polls_never_change_the_outcome(flow: Steps, schedule: list[Event]) -> None:
    states, instants = run(flow, schedule)
    end = instants[-1] if instants else T0
    at, polls_only = T0, []
    for gap, is_poll in schedule:
        at += gap
        if is_poll:
            polls_only.append((at, True))
    progress = lifecycle.start(flow, T0)
    for when, _ in polls_only:
        progress = lifecycle.advance(flow, progress, when, poll=True)
    progress = lifecycle.advance(flow, progress, end)
    assert progress == (states[-1] if states else lifecycle.advance(flow, lifecycle.start(flow, T0), T0))


actions = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 999, 5000, 60_000]),
        st.sampled_from(["poll", "read", "cancel", "force"]),
        st.sampled_from([NEW, PROCESSING, SUCCEEDED, FAILED, CANCELLED]),
    ),
    max_size=25,
)


@PROPERTIES
@given(flows(), actions)
def test_cancel_and_force_at_any_moment_keep_every_timing_rule(
    flow: Steps, schedule: list[tuple[int, str, str]]
) -> None:
    progress, at = lifecycle.start(flow, T0), T0
    for gap, action, status in schedule:
        at += gap
        before = progress
        if action in ("cancel", "force"):
            current = lifecycle.advance(flow, progress, at)  # as jobs.py does before either
            act = lifecycle.cancel if action == "cancel" else lifecycle.force
            progress = act(current, status, (), at)
            if current.is_terminal:
                assert progress is current
            else:
                assert progress.pinned
                assert (progress.status, progress.updated_ms) == (status, at)
        else:
            progress = lifecycle.advance(flow, progress, at, poll=action == "poll")
        check_timestamps(progress)
        if before.is_terminal:
            assert progress is before
        if before.pinned and not before.is_terminal and action in ("poll", "read"):
            assert progress is before  # the scenario no longer drives a forced job
