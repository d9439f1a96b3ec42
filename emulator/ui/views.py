"""What each dashboard page shows, read from the backend: plain data for the templates, no markup here.

Reading a job for the dashboard brings its status up to the clock (as a listing does) but never counts as a
poll and never publishes an event: the dashboard watches, it does not move anything.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from emulator import lifecycle
from emulator.backend import Backend
from emulator.catalog import batch_status, is_visible
from emulator.errors import NotFound
from emulator.journal import JournalEntry
from emulator.lifecycle import JobError
from emulator.options import DEFAULT_SANDBOX
from emulator.store import ExportJob, Tenant

__all__ = ["Tenant"]

JOBS_PATH = "/data/core/ups/export/jobs"
MAX_JOB_ROWS = 500
MAX_JOURNAL_ROWS = 50
MAX_BODY_SHOWN = 4096  # characters of a body on the journal page (HAR downloads have all the journal kept)
MAX_POLLS_SHOWN = 200  # the latest polls of a job on its timeline
MAX_POLL_ROWS = 50  # ... and in its table
MAX_FILES_SHOWN = 100
MIN_AXIS_MS = 10_000  # a timeline spans at least this, so that a job that moved at once is drawn at the left
LABEL_WIDTH = 90  # timeline units (of 1000) a status label needs
JOURNAL_FILTERS = ("method", "path", "status", "org", "sandbox")


def clip(text: str, limit: int = MAX_BODY_SHOWN) -> str:
    """The head of a long text, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit} more characters: the HAR download has them)"


def instant(ms: int) -> str:
    """Epoch ms as RFC 3339 UTC with milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def span(ms: int) -> str:
    """A duration, short: 850 ms, 12.5 s, 3 min 20 s, 2 h 5 min."""
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:g} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@dataclass(frozen=True)
class ClockView:
    mode: str
    now_ms: int
    speed: float
    start_ms: int

    @property
    def now(self) -> str:
        return instant(self.now_ms)


def clock(backend: Backend) -> ClockView:
    c = backend.clock
    return ClockView(c.mode, c.now_ms(), c.speed, c.start_ms)


# -- tenants ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantRow:
    org: str
    sandbox: str
    datasets: int
    jobs: int
    batches: int
    by_status: dict[str, int]


def tenants(backend: Backend) -> list[TenantRow]:
    now_ms = backend.clock.now_ms()
    rows = []
    for tenant, state in sorted(backend.store.tenants.items()):
        state.index.settle(now_ms)  # only the jobs whose step is due are touched
        counts = {status: len(state.index.keys("createdTime", status)) for status in lifecycle.STATUSES}
        rows.append(
            TenantRow(
                tenant.org,
                tenant.sandbox,
                len(state.datasets),
                len(state.jobs),
                len(state.batches),
                {status: count for status, count in counts.items() if count},
            )
        )
    return rows


def tenant_of(org: str | None, sandbox: str | None) -> Tenant | None:
    if not org:
        return None
    return Tenant(org, sandbox or DEFAULT_SANDBOX)


# -- jobs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    id: int
    kind: str
    status: str
    scenario: str
    created_ms: int
    updated_ms: int
    polls: int
    tenant: Tenant
    dataset_id: str

    @property
    def created(self) -> str:
        return instant(self.created_ms)

    @property
    def updated(self) -> str:
        return instant(self.updated_ms)


def _row(job: ExportJob) -> JobRow:
    progress = job.progress
    return JobRow(
        job.id,
        "export",
        progress.status,
        job.scenario.name,
        progress.created_ms,
        progress.updated_ms,
        job.polls,
        job.tenant,
        str(job.request["destination"]["datasetId"]),
    )


@dataclass(frozen=True)
class TenantJobs:
    tenant: Tenant
    known: bool  # the store has the tenant
    rows: list[JobRow]
    total: int  # jobs the tenant lists (rows shows the newest MAX_JOB_ROWS)
    datasets: list[tuple[str, str]]  # (id, name)


def tenant_jobs(backend: Backend, tenant: Tenant) -> TenantJobs:
    """The tenant's export jobs, newest first (segment jobs join this list once the emulator has them)."""
    state = backend.store.tenants.get(tenant)
    if state is None:
        return TenantJobs(tenant, False, [], 0, [])
    state.index.settle(backend.clock.now_ms())
    keys = state.index.keys("createdTime", None)
    newest = [state.jobs[job_id] for _, job_id in reversed(keys[-MAX_JOB_ROWS:])]
    datasets = [(d.id, str(d.body.get("name", ""))) for d in state.datasets.values()]
    return TenantJobs(tenant, True, [_row(job) for job in newest], len(keys), datasets)


@dataclass(frozen=True)
class StepView:
    index: int
    status: str
    after: str  # "1 poll", "5 s", "1 poll or 5 s", "at once"
    phase: str | None
    errors: tuple[JobError, ...]
    reached: bool
    current: bool


@dataclass(frozen=True)
class Mark:
    """One point on the timeline: x in 0..1000 along the emulator-time axis."""

    x: float
    at_ms: int
    label: str
    kind: str  # "transition" | "poll" | "fault" | "now" | "due"
    detail: str = ""
    row: int = 0  # a transition's label row, from the axis up

    @property
    def label_y(self) -> int:
        return 72 - 16 * min(self.row, 4)

    @property
    def at(self) -> str:
        return instant(self.at_ms)


@dataclass(frozen=True)
class FileRow:
    id: str
    name: str
    records: int


@dataclass(frozen=True)
class BatchView:
    id: str
    status: str
    visible: bool
    files: list[FileRow]
    file_count: int
    segment: str | None


@dataclass
class JobDetail:
    row: JobRow
    job: ExportJob
    steps: list[StepView]
    transitions: list[Mark]
    polls: list[Mark]
    marks: list[Mark]
    axis: list[Mark]
    errors: tuple[JobError, ...]
    faults: list[tuple[str, str, int]]  # (operation, what the fault answers, times it fired)
    polls_in_journal: int = 0  # polls still in the journal (`polls` holds the latest MAX_POLLS_SHOWN)
    batches: list[BatchView] = field(default_factory=list)
    pinned: bool = False
    next_due: str | None = None


def _after(step: lifecycle.Step) -> str:
    parts = []
    if step.after_polls is not None:
        parts.append(f"{step.after_polls} poll{'s' if step.after_polls != 1 else ''}")
    if step.after_ms is not None:
        parts.append(span(step.after_ms))
    return " or ".join(parts) if parts else "at once"


async def job_detail(backend: Backend, job: ExportJob) -> JobDetail:
    backend.jobs.refresh(job)
    progress = job.progress
    now_ms = backend.clock.now_ms()
    steps = [
        StepView(
            i,
            step.status,
            "on creation" if i == 0 else _after(step),
            step.phase,
            step.errors,
            i <= progress.step,
            i == progress.step and not progress.pinned,
        )
        for i, step in enumerate(job.scenario.steps)
    ]
    every_poll = _polls(backend, job)
    polls = every_poll[-MAX_POLLS_SHOWN:]
    due = lifecycle.due_ms(job.scenario.steps, progress)
    start = progress.created_ms
    end = max([now_ms, progress.updated_ms, *(p.time for p in polls), *([due] if due else [])])
    width = max(end - start, MIN_AXIS_MS)

    def x(ms: int) -> float:
        return round(40 + 920 * (ms - start) / width, 1)

    transitions = []
    rows: list[float] = []  # the x where each label row's last label starts: close labels go one row down
    for t in progress.transitions:
        at = x(t.at_ms)
        row = next((i for i, last in enumerate(rows) if at - last >= LABEL_WIDTH), len(rows))
        rows[row : row + 1] = [at]
        transitions.append(Mark(at, t.at_ms, t.status, "transition", t.phase or "", row))
    poll_marks = [
        Mark(
            x(p.time),
            p.time,
            str(p.status) if not p.dropped else "dropped",
            "fault" if p.status >= 400 or p.dropped else "poll",
            p.note or "",
        )
        for p in polls
    ]
    marks = [*transitions, *poll_marks, Mark(x(now_ms), now_ms, "now", "now")]
    if due is not None:
        marks.append(Mark(x(due), due, "next step due", "due"))
    axis = [
        Mark(x(start + width * i // 4), start + width * i // 4, f"+{span(width * i // 4)}", "axis")
        for i in range(5)
    ]
    faults = [
        (fault.operation, _fault_answer(fault), job.fault_hits.get(fault.operation, 0))
        for fault in job.scenario.faults
    ]
    detail = JobDetail(
        _row(job),
        job,
        steps,
        transitions,
        poll_marks,
        marks,
        axis,
        progress.errors,
        faults,
        polls_in_journal=len(every_poll),
        pinned=progress.pinned,
        next_due=instant(due) if due is not None else None,
    )
    detail.batches = await _batches(backend, job)
    return detail


def _fault_answer(fault: object) -> str:
    status = getattr(fault, "status", None)
    if getattr(fault, "drop", False):
        return "drops the connection"
    delay = getattr(fault, "delay_seconds", 0.0)
    answer = f"answers {status}" if status is not None else "answers normally"
    return f"{answer} after {delay:g} s" if delay else answer


def _polls(backend: Backend, job: ExportJob) -> list[JournalEntry]:
    path = f"{JOBS_PATH}/{job.id}"
    found = backend.journal.entries(
        {"method": "GET", "path": path, "org": job.tenant.org, "sandbox": job.tenant.sandbox}
    )
    return [e for e in found if e.path == path and e.time >= job.progress.created_ms]


async def _batches(backend: Backend, job: ExportJob) -> list[BatchView]:
    state = backend.store.tenants.get(job.tenant)
    views = []
    for batch_id in job.batch_ids:
        batch = state.batches.get(batch_id) if state else None
        if batch is None:
            continue
        files: list[FileRow] = []
        count = 0
        if batch_status(batch) == "success":
            listed = await backend.exports.batch_files(job.tenant, batch_id, 0, MAX_FILES_SHOWN)
            count = listed.count
            files = [FileRow(f.id, f.name, f.records) for f in listed.page]
        segment = str(batch.segment.get("segmentId")) if batch.segment else None
        views.append(BatchView(batch_id, batch_status(batch), is_visible(batch), files, count, segment))
    return views


# -- journal ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalView:
    rows: list[JournalEntry]  # newest first
    matching: int
    total: int
    filters: dict[str, str]


def journal_filters(query: Mapping[str, str]) -> dict[str, str]:
    return {name: query[name].strip() for name in JOURNAL_FILTERS if query.get(name, "").strip()}


def journal_entries(backend: Backend, filters: Mapping[str, str]) -> list[JournalEntry]:
    """Entries matching the dashboard's filters, oldest first: method, path (a prefix, or a glob with * or
    ?), status (e.g. 404, or 4xx), org, sandbox."""
    path = filters.get("path", "")
    globbed = any(c in path for c in "*?[")
    base = {k: v for k, v in filters.items() if k in ("method", "org", "sandbox")}
    entries = backend.journal.entries(base)
    if path and not globbed:  # a prefix here (the journal's own `path` filter is exact or a glob)
        entries = [e for e in entries if e.path.startswith(path)]
    if globbed:
        entries = [e for e in entries if fnmatch.fnmatchcase(e.path, path)]
    status = filters.get("status", "").lower()
    if status:
        entries = [e for e in entries if _status_matches(e.status, status)]
    return entries


def _status_matches(status: int, wanted: str) -> bool:
    if len(wanted) == 3 and wanted.endswith("xx") and wanted[0].isdigit():
        return status // 100 == int(wanted[0])
    return str(status) == wanted


def journal(backend: Backend, query: Mapping[str, str]) -> JournalView:
    filters = journal_filters(query)
    entries = journal_entries(backend, filters)
    rows = entries[-MAX_JOURNAL_ROWS:][::-1]
    return JournalView(rows, len(entries), len(backend.journal.entries({})), filters)


# -- scenarios ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioRow:
    name: str
    description: str
    source: str
    text: str
    default: bool
    queued: int
    steps: str


@dataclass(frozen=True)
class ScenariosView:
    rows: list[ScenarioRow]
    default: str
    queued: list[str]


def scenarios(backend: Backend) -> ScenariosView:
    registry = backend.scenarios
    queued = registry.queued
    rows = [
        ScenarioRow(
            s.name,
            s.description,
            s.source,
            s.text,
            s.name in registry.defaults.values(),  # the default of its kind (export or segment jobs)
            queued.count(s.name),
            " → ".join(step.status for step in s.steps),
        )
        for s in registry.scenarios.values()
    ]
    return ScenariosView(rows, registry.default, queued)


# -- pages that take ids --------------------------------------------------------------------------------


def _job_number(job_id: str) -> str:
    if not (job_id.isascii() and job_id.isdigit()) or len(job_id) > 18:
        raise NotFound(f"There is no export job '{job_id[:60]}'")
    return job_id


async def job_page(backend: Backend, job_id: str) -> dict[str, Any]:
    """One job (of any tenant): its detail, its dataset's name and its request as indented JSON."""
    job = backend.jobs.find(_job_number(job_id))
    detail = await job_detail(backend, job)
    state = backend.store.tenants.get(job.tenant)
    dataset = state.datasets.get(detail.row.dataset_id) if state else None
    return {
        "view_data": detail,
        "dataset_name": str(dataset.body.get("name", "")) if dataset else "",
        "request_json": json.dumps(job.request, indent=2, ensure_ascii=False, default=str),
    }


async def file_page(
    backend: Backend, tenant: Tenant, file_id: str, query: Mapping[str, str]
) -> dict[str, Any]:
    """A file's first rows (`rows`, 20 by default) as a table of text."""
    raw = query.get("rows", "20")
    rows = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 5 else 20
    batch, export_file, shown = await backend.exports.preview(tenant, file_id, rows)
    fmt = backend.exports.spec(batch).format
    return {
        "batch": batch,
        "file": export_file,
        "preview": shown,
        "format": "JSON Lines" if fmt == "json" else "Parquet",
    }


async def file_bytes(backend: Backend, tenant: Tenant, file_id: str) -> tuple[str, str, bytes]:
    """The file's name, content type and bytes, as Data Access serves them."""
    batch, export_file = await backend.exports.file(tenant, file_id)
    data = await backend.exports.content(batch, export_file)
    return export_file.name, backend.exports.content_type(batch), data


def hint_of(entry: JournalEntry) -> str | None:
    """The near-miss hint the emulator answered with (x-emulator-hint), when the journal keeps one."""
    hint = getattr(entry, "hint", None)
    return str(hint) if hint else None


def query_string(query: Mapping[str, str]) -> str:
    return urlencode(list(query.items()))
