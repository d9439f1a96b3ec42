"""Tenant-partitioned in-memory state: the objects, keyed by id, and an ordered index for job listing; and
each object's saved form (what a state file keeps of it, see emulator/persistence.py)."""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from emulator import lifecycle
from emulator.lifecycle import JobError, Progress, Transition, transitions_from_state
from emulator.scenarios import Scenario


class Tenant(NamedTuple):
    """AEP partitions everything by IMS org and sandbox; so do we. A tuple: its hash, taken on every
    lookup of a tenant's state, is C code (a frozen dataclass hashes in Python, 4x slower)."""

    org: str
    sandbox: str


# Slots: no __dict__, so one object less per dataset, job and batch for the garbage collector to scan
# (jobs accumulate for the server's whole life).
@dataclass(slots=True)
class Dataset:
    id: str
    tenant: Tenant
    created_ms: int
    body: dict[str, Any]
    client_id: str
    saved: dict[str, Any] | None = field(default=None, compare=False, repr=False)  # see dataset_state


@dataclass(slots=True)
class ExportJob:
    id: int
    tenant: Tenant
    request: dict[str, Any]
    scenario: Scenario
    request_id: str
    batch_ids: tuple[str, ...]
    progress: Progress
    profile_instance_id: str = "ups"
    fault_hits: dict[str, int] = field(default_factory=dict)
    # The segment definitions of `filter.segments`, as they were when the job was created: (segment id,
    # expression type, format, value). Their members are what the job exports.
    definitions: tuple[tuple[str, str, str, str], ...] = ()
    polls: int = 0  # GETs of the job, all steps together (shown by the dashboard; not saved)
    # What the job holds of its tenant's byte budget (emulator/budget.py; 0 when restored, not saved).
    held_bytes: int = field(default=0, compare=False, repr=False)
    # The job's wire form, encoded once per displayed state (see api/export_jobs._cached_job_bytes): the
    # transitions it was encoded at, and the bytes.
    wire: tuple[tuple[Transition, ...], bytes] | None = field(default=None, compare=False, repr=False)
    # The job's saved form (see job_state) and what it was made from: progress, listed, scenario index.
    saved: tuple[Progress, bool, int, dict[str, Any]] | None = field(default=None, compare=False, repr=False)
    # The listing index of the tenant that lists the job (None once deleted), and the transitions it is
    # filed under there: every change of progress goes through `set_progress`, which refiles it.
    index: JobIndex | None = field(default=None, compare=False, repr=False)
    filed: tuple[Transition, ...] = field(default=(), compare=False, repr=False)

    @property
    def index_key(self) -> tuple[int, int]:
        return (self.progress.created_ms, self.id)

    def refresh(self, now_ms: int, *, poll: bool = False) -> None:
        """Bring the status up to `now_ms`; `poll` when this read is a GET of the job."""
        progress = lifecycle.advance(self.scenario.steps, self.progress, now_ms, poll=poll)
        if progress is not self.progress:
            self.set_progress(progress)

    def set_progress(self, progress: Progress) -> None:
        self.progress = progress
        if self.index is not None and progress.transitions is not self.filed:
            self.index.refile(self)


@dataclass(slots=True)
class Batch:
    """A Catalog batch written by an export job (one per job, or one per segment)."""

    id: str
    tenant: Tenant
    dataset_id: str
    job: ExportJob
    segment: dict[str, Any] | None
    client_id: str
    saved: dict[str, Any] | None = field(default=None, compare=False, repr=False)  # see batch_state


Key = tuple[int, int]  # (epoch ms, job id): the listing's order and cursor
ALL = ""  # the index's name for "any status"


class JobIndex:
    """A tenant's listed jobs in every order the job list offers, so that a first page costs the same with
    100,000 jobs as with 100: keys (creationTime, id) and (updateTime, id), sorted, over all jobs and per
    status. A status is computed on read from the clock and polls; so the index also keeps the instants at
    which jobs next move on by the clock alone (a heap), and `settle(now)` refreshes only the jobs whose
    step is due. Polls, cancels and forces refile their job as they change it (ExportJob.set_progress)."""

    def __init__(self, jobs: Mapping[int, ExportJob]):
        self._jobs = jobs
        self.created: dict[str, list[Key]] = {ALL: []}
        self.updated: dict[str, list[Key]] = {ALL: []}
        self._due: list[Key] = []  # (due ms, job id), a heap; entries of jobs since moved on are skipped

    def keys(self, sort_field: str, status: str | None) -> list[Key]:
        """Sorted ascending; read them, never change them."""
        by = self.created if sort_field == "createdTime" else self.updated
        return by.get(status or ALL, [])

    def add(self, job: ExportJob) -> None:
        job.index = self
        self._file(job)

    def remove(self, job: ExportJob) -> None:
        self._unfile(job)
        job.index, job.filed = None, ()

    def refile(self, job: ExportJob) -> None:
        """`job` made a transition: its status and updateTime changed, and maybe its due instant."""
        self._unfile(job)
        self._file(job)

    def settle(self, now_ms: int) -> None:
        """Every listed job's status brought up to `now_ms`: those whose step is due are refreshed."""
        due = self._due
        while due and due[0][0] <= now_ms:
            _, job_id = heapq.heappop(due)
            job = self._jobs.get(job_id)
            if job is not None:
                job.refresh(now_ms)  # refiles it (and pushes its next due instant) if it moved on

    def _file(self, job: ExportJob) -> None:
        progress = job.progress
        status, created, updated = (
            progress.status,
            (progress.created_ms, job.id),
            (progress.updated_ms, job.id),
        )
        for by, key in ((self.created, created), (self.updated, updated)):
            for name in (ALL, status):
                _insert(by.setdefault(name, []), key)
        job.filed = progress.transitions
        due_ms = lifecycle.due_ms(job.scenario.steps, progress)
        if due_ms is not None:
            if len(self._due) > 2 * len(self._jobs) + 64:  # mostly entries of jobs gone or moved on
                self._due = [entry for entry in self._due if self._is_due(entry)]
                heapq.heapify(self._due)
            heapq.heappush(self._due, (due_ms, job.id))

    def _unfile(self, job: ExportJob) -> None:
        filed = job.filed
        if not filed:
            return
        status, created, updated = filed[-1].status, (filed[0].at_ms, job.id), (filed[-1].at_ms, job.id)
        for by, key in ((self.created, created), (self.updated, updated)):
            for name in (ALL, status):
                keys = by[name]
                del keys[bisect.bisect_left(keys, key)]

    def _is_due(self, entry: Key) -> bool:
        job = self._jobs.get(entry[1])
        return job is not None and lifecycle.due_ms(job.scenario.steps, job.progress) == entry[0]


def _insert(keys: list[Key], key: Key) -> None:
    if not keys or keys[-1] < key:
        keys.append(key)  # the common case: a new job, or a job's latest transition
    else:
        bisect.insort(keys, key)


@dataclass
class TenantState:
    datasets: dict[str, Dataset] = field(default_factory=dict)
    jobs: dict[int, ExportJob] = field(default_factory=dict)
    index: JobIndex = field(init=False)
    batches: dict[str, Batch] = field(default_factory=dict)
    # Fault counters not bound to one job: (scenario name, operation) -> times fired.
    fault_hits: dict[tuple[str, str], int] = field(default_factory=dict)
    # Every job whose data the tenant keeps, oldest first: listed ones, and deleted ones whose batches stay.
    # This is what --max-jobs-per-tenant bounds.
    exports: dict[int, ExportJob] = field(default_factory=dict)
    # Bytes of the tenant's own requests its datasets and jobs hold: what --max-tenant-bytes bounds.
    held_bytes: int = 0

    def __post_init__(self) -> None:
        self.index = JobIndex(self.jobs)

    def add_dataset(self, dataset: Dataset, held_bytes: int) -> None:
        self.datasets[dataset.id] = dataset
        self.held_bytes += held_bytes

    def add_job(self, job: ExportJob) -> None:
        self.jobs[job.id] = job
        self.exports[job.id] = job
        self.held_bytes += job.held_bytes
        self.index.add(job)

    def remove_job(self, job: ExportJob) -> None:
        """The job record only (a DELETE of a finished job): its batches and files stay."""
        del self.jobs[job.id]
        self.index.remove(job)

    def evict(self, job: ExportJob) -> None:
        """The job and everything it wrote, as if it had never existed."""
        if job.id in self.jobs:
            self.remove_job(job)
        del self.exports[job.id]
        self.held_bytes -= job.held_bytes
        for batch_id in job.batch_ids:
            self.batches.pop(batch_id, None)


class Store:
    def __init__(self) -> None:
        self.tenants: dict[Tenant, TenantState] = {}
        self.last_job_id = 0

    def tenant(self, tenant: Tenant) -> TenantState:
        state = self.tenants.get(tenant)
        if state is None:
            state = self.tenants[tenant] = TenantState()
        return state

    def next_job_id(self) -> int:
        self.last_job_id += 1
        return self.last_job_id

    def clear(self, tenant: Tenant | None = None) -> None:
        if tenant is None:
            self.tenants.clear()
            self.last_job_id = 0
        else:
            self.tenants.pop(tenant, None)


# -- saved forms: JSON-able dicts, and back (KeyError, TypeError or ValueError when malformed) -----------
# Each object keeps its saved form until it changes, so a state file save with 100,000 jobs builds only
# what changed since the last one, and can tell that nothing did without encoding anything (see Saver).
# The forms are shared: read them, never change them.


def dataset_state(dataset: Dataset) -> dict[str, Any]:
    if dataset.saved is None:  # a dataset never changes
        dataset.saved = {
            "id": dataset.id,
            "createdMs": dataset.created_ms,
            "body": dataset.body,
            "clientId": dataset.client_id,
        }
    return dataset.saved


def dataset_from_state(tenant: Tenant, saved: Mapping[str, Any]) -> Dataset:
    body = saved["body"]
    if not isinstance(body, dict):
        raise TypeError(f"dataset {saved['id']}: body is not an object")
    return Dataset(str(saved["id"]), tenant, int(saved["createdMs"]), body, str(saved["clientId"]))


def batch_state(batch: Batch) -> dict[str, Any]:
    if batch.saved is None:  # a batch never changes (its status is its job's)
        batch.saved = {
            "id": batch.id,
            "datasetId": batch.dataset_id,
            "job": batch.job.id,
            "segment": batch.segment,
            "clientId": batch.client_id,
        }
    return batch.saved


def batch_from_state(tenant: Tenant, saved: Mapping[str, Any], jobs: Mapping[int, ExportJob]) -> Batch:
    segment = saved["segment"]
    if segment is not None and not isinstance(segment, dict):
        raise TypeError(f"batch {saved['id']}: segment is not an object")
    job = jobs.get(int(saved["job"]))
    if job is None or job.tenant != tenant:
        raise ValueError(f"batch {saved['id']}: no job {saved['job']} in its tenant")
    return Batch(str(saved["id"]), tenant, str(saved["datasetId"]), job, segment, str(saved["clientId"]))


def job_state(job: ExportJob, listed: bool, scenario: int) -> dict[str, Any]:
    """`listed` false: deleted by its owner, only its batches and files remain. The scenario is saved apart,
    once for all the jobs that share it: `scenario` is its place in that list."""
    progress = job.progress
    kept = job.saved
    # Progress is an immutable value, replaced on every change; fault counters change in place.
    if (
        kept is not None
        and kept[0] is progress
        and kept[1] is listed
        and kept[2] == scenario
        and kept[3]["faultHits"] == job.fault_hits
    ):
        return kept[3]
    form = {
        "id": job.id,
        "listed": listed,
        "request": job.request,
        "scenario": scenario,
        "requestId": job.request_id,
        "batchIds": list(job.batch_ids),
        "profileInstanceId": job.profile_instance_id,
        "faultHits": dict(job.fault_hits),
        "definitions": [list(definition) for definition in job.definitions],
        "progress": {
            "step": progress.step,
            "pollsInStep": progress.polls_in_step,
            "transitions": [[t.status, t.at_ms, t.phase] for t in progress.transitions],
            "errors": [[e.code, e.msg, e.call_stack] for e in progress.errors],
            "pinned": progress.pinned,
        },
    }
    job.saved = (progress, listed, scenario, form)
    return form


def job_from_state(tenant: Tenant, saved: Mapping[str, Any], scenario: Scenario) -> ExportJob:
    progress = saved["progress"]
    transitions = transitions_from_state(progress, f"job {saved['id']}")
    request = saved["request"]
    if not isinstance(request, dict) or not isinstance(request.get("destination"), dict):
        raise TypeError(f"job {saved['id']}: request is not an export-job request")
    return ExportJob(
        id=int(saved["id"]),
        tenant=tenant,
        request=request,
        scenario=scenario,
        request_id=str(saved["requestId"]),
        batch_ids=tuple(str(b) for b in saved["batchIds"]),
        progress=Progress(
            step=int(progress["step"]),
            polls_in_step=int(progress["pollsInStep"]),
            transitions=transitions,
            errors=tuple(JobError(str(c), str(m), str(s)) for c, m, s in progress["errors"]),
            pinned=bool(progress["pinned"]),
        ),
        profile_instance_id=str(saved["profileInstanceId"]),
        fault_hits={str(k): int(v) for k, v in saved["faultHits"].items()},
        definitions=tuple((str(i), str(t), str(f), str(v)) for i, t, f, v in saved.get("definitions", [])),
    )
