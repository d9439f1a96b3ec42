"""The pure export-job state machine.

A job's state is a small immutable `Progress`, advanced only when the job is read: by the emulator clock
(`after.seconds`, counted from the previous step's instant) and by polls (`after.polls`, GETs of the job
counted since the previous step). Whichever condition of a step holds first fires it. Every timestamp a
job shows is derived from the instants recorded in `Progress.transitions`, so they are always consistent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeVar

NEW = "NEW"
PROCESSING = "PROCESSING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
STATUSES = (NEW, PROCESSING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

PROFILE_EXPORT = "profileExport"
DATASET_WRITE = "datasetWrite"


@dataclass(frozen=True)
class JobError:
    code: str
    msg: str
    call_stack: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "msg": self.msg, "callStack": self.call_stack}


@dataclass(frozen=True)
class Step:
    """One status a job passes through; `after_*` say when it follows the previous step."""

    status: str
    after_polls: int | None = None
    after_seconds: float | None = None
    phase: str | None = None
    errors: tuple[JobError, ...] = ()
    # `after_seconds` in ms, computed once: read whenever a job is brought up to the clock.
    after_ms: int | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        after_ms = None if self.after_seconds is None else round(self.after_seconds * 1000)
        object.__setattr__(self, "after_ms", after_ms)


# Transition and Progress are tuples: a poll of a live job makes a new Progress, and a tuple is built in C
# (a frozen dataclass sets each field through object.__setattr__, 5x slower); and a job's transitions, a
# tuple of tuples of strings and numbers, are nothing the cyclic garbage collector has to scan.
class Transition(NamedTuple):
    status: str
    at_ms: int
    phase: str | None


class Progress(NamedTuple):
    """Where a job is: the step reached, the polls counted toward the next, and every transition so far."""

    step: int
    polls_in_step: int
    transitions: tuple[Transition, ...]
    errors: tuple[JobError, ...] = ()
    pinned: bool = False  # forced by the control plane: the scenario no longer drives the job

    @property
    def status(self) -> str:
        return self.transitions[-1].status

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def created_ms(self) -> int:
        return self.transitions[0].at_ms

    @property
    def updated_ms(self) -> int:
        return self.transitions[-1].at_ms


def start(steps: tuple[Step, ...], created_ms: int) -> Progress:
    first = steps[0]
    return Progress(
        step=0,
        polls_in_step=0,
        transitions=(Transition(first.status, created_ms, _phase_of(first)),),
        errors=first.errors,
    )


def advance(steps: tuple[Step, ...], progress: Progress, now_ms: int, *, poll: bool = False) -> Progress:
    """The job's progress at `now_ms`; `poll=True` when this read is a GET of the job."""
    if progress.is_terminal or progress.pinned:
        return progress
    progress = _advance_by_time(steps, progress, now_ms)
    if not poll or progress.is_terminal:
        return progress
    # Every poll of a live job comes here: the constructor costs half of _replace().
    progress = Progress(
        step=progress.step,
        polls_in_step=progress.polls_in_step + 1,
        transitions=progress.transitions,
        errors=progress.errors,
        pinned=progress.pinned,
    )
    nxt = _next_step(steps, progress)
    if nxt is not None and nxt.after_polls is not None and progress.polls_in_step >= nxt.after_polls:
        progress = _enter(progress, progress.step + 1, nxt, _not_before(progress, now_ms))
        progress = _advance_by_time(steps, progress, now_ms)
    return progress


def cancel(progress: Progress, status: str, errors: tuple[JobError, ...], now_ms: int) -> Progress:
    """A live job ends in `status` (the scenario's `on_cancel`, CANCELLED by default) at `now_ms`."""
    if progress.is_terminal:
        return progress
    return _transition(progress, status, None, errors, _not_before(progress, now_ms), pinned=True)


def force(progress: Progress, status: str, errors: tuple[JobError, ...], now_ms: int) -> Progress:
    """Set the status by hand; the scenario stops driving the job. Terminal jobs are left as they are."""
    if progress.is_terminal:
        return progress
    phase = None
    if status == PROCESSING:
        # Forcing PROCESSING on a processing job keeps its phase: a dataset write does not restart the export.
        phase = progress.transitions[-1].phase or PROFILE_EXPORT
    return _transition(progress, status, phase, errors, _not_before(progress, now_ms), pinned=True)


def due_ms(steps: tuple[Step, ...], progress: Progress) -> int | None:
    """The instant at which the clock alone moves the job on (its next step's `after.seconds`), None when
    only polls, a cancel or nothing will: what lets a listing bring every job up to the clock by touching
    only the jobs whose step is due."""
    if progress.is_terminal or progress.pinned:
        return None
    nxt = _next_step(steps, progress)
    return None if nxt is None else _due_ms(progress, nxt)


def _advance_by_time(steps: tuple[Step, ...], progress: Progress, now_ms: int) -> Progress:
    while not progress.is_terminal:
        nxt = _next_step(steps, progress)
        if nxt is None:
            break
        due_ms = _due_ms(progress, nxt)
        if due_ms is None or due_ms > now_ms:
            break
        progress = _enter(progress, progress.step + 1, nxt, due_ms)
    return progress


def _due_ms(progress: Progress, step: Step) -> int | None:
    if step.after_ms is None:
        return progress.updated_ms if step.after_polls is None else None
    return progress.updated_ms + step.after_ms


def _not_before(progress: Progress, now_ms: int) -> int:
    """Transitions never go back in time, even if a caller's clock did."""
    return max(now_ms, progress.updated_ms)


def _next_step(steps: tuple[Step, ...], progress: Progress) -> Step | None:
    index = progress.step + 1
    return steps[index] if index < len(steps) else None


def _enter(progress: Progress, index: int, step: Step, at_ms: int) -> Progress:
    moved = _transition(progress, step.status, _phase_of(step), step.errors, at_ms, pinned=False)
    return moved._replace(step=index)


def _transition(
    progress: Progress,
    status: str,
    phase: str | None,
    errors: tuple[JobError, ...],
    at_ms: int,
    *,
    pinned: bool,
) -> Progress:
    return progress._replace(
        polls_in_step=0,
        transitions=(*progress.transitions, Transition(status, at_ms, phase)),
        errors=progress.errors + errors,
        pinned=pinned,
    )


def _phase_of(step: Step) -> str | None:
    if step.status != PROCESSING:
        return None
    return step.phase or PROFILE_EXPORT


class Interval(NamedTuple):  # a tuple: built on every read of a job, and a frozen dataclass is 3x slower
    start_ms: int
    end_ms: int | None

    def to_json(self) -> dict[str, int]:
        if self.end_ms is None:
            return {"startTimeInMs": self.start_ms}
        return {
            "startTimeInMs": self.start_ms,
            "endTimeInMs": self.end_ms,
            "totalTimeInMs": self.end_ms - self.start_ms,
        }


class Timings(NamedTuple):
    total: Interval
    profile_export: Interval | None
    dataset_write: Interval | None


def timings(progress: Progress) -> Timings:
    """The job's `metrics.*Time` intervals, derived from its transitions.

    `totalTime` runs from creation to the terminal instant (no end while the job is live).
    `profileExportTime` runs from the first PROCESSING instant (whatever its phase) to the start of dataset
    writing, or to the terminal instant; it is absent until the job is PROCESSING.
    `aCPDatasetWriteTime` starts at the first `datasetWrite` step and ends at the terminal instant; a job
    that succeeds without such a step wrote its dataset at the instant it succeeded (an interval of 0 ms),
    so a SUCCEEDED job always has both, and a job that never processed gets both only if it SUCCEEDED
    (then both are 0 ms at that instant). An interval without an end has no `totalTimeInMs`.
    """
    end_ms = progress.updated_ms if progress.is_terminal else None
    export_start = write_start = None
    for transition in progress.transitions:  # one pass: this runs on every encoding of a job
        if export_start is None and transition.status == PROCESSING:
            export_start = transition.at_ms
        if write_start is None and transition.phase == DATASET_WRITE:
            write_start = transition.at_ms
    if write_start is None and progress.status == SUCCEEDED:
        write_start = end_ms
    if export_start is None and write_start is not None:
        export_start = write_start
    export = None
    if export_start is not None:
        export = Interval(export_start, write_start if write_start is not None else end_ms)
    write = None if write_start is None else Interval(write_start, end_ms)
    return Timings(Interval(progress.created_ms, end_ms), export, write)


class Refreshable(Protocol):
    """A job of either kind: its progress, brought up to an instant on request."""

    @property
    def progress(self) -> Progress: ...

    def refresh(self, now_ms: int) -> None: ...


J = TypeVar("J", bound=Refreshable)


def oldest_finished(jobs: Iterable[J], count: int, now_ms: int) -> list[J]:
    """Up to `count` finished jobs, oldest first (in `jobs` order): those a tenant at its cap lets go."""
    finished: list[J] = []
    for job in jobs:
        job.refresh(now_ms)
        if job.progress.is_terminal:
            finished.append(job)
            if len(finished) == count:
                break
    return finished


def transitions_from_state(progress: Mapping[str, Any], what: str) -> tuple[Transition, ...]:
    """A saved job's transitions (`what` names the job in the error); ValueError when there are none."""
    transitions = tuple(
        Transition(str(status), int(at_ms), None if phase is None else str(phase))
        for status, at_ms, phase in progress["transitions"]
    )
    if not transitions:
        raise ValueError(f"{what} has no transitions")
    return transitions
