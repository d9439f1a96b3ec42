"""Tenant-partitioned in-memory state: the objects, keyed by id, and an ordered index for job listing; and
each object's saved form (what a state file keeps of it, see emulator/persistence.py)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from emulator import lifecycle
from emulator.lifecycle import JobError, Progress, Transition
from emulator.scenarios import Scenario


class Tenant(NamedTuple):
    """AEP partitions everything by IMS org and sandbox; so do we. A tuple: its hash, taken on every
    lookup of a tenant's state, is C code (a frozen dataclass hashes in Python, 4x slower)."""

    org: str
    sandbox: str


@dataclass
class Dataset:
    id: str
    tenant: Tenant
    created_ms: int
    body: dict[str, Any]
    client_id: str
    saved: dict[str, Any] | None = field(default=None, compare=False, repr=False)  # see dataset_state


@dataclass
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
    # The job's wire form, encoded once per displayed state (see api/export_jobs._job_bytes): the
    # transitions it was encoded at, and the bytes.
    wire: tuple[tuple[Transition, ...], bytes] | None = field(default=None, compare=False, repr=False)
    # The job's saved form (see job_state) and what it was made from: progress, listed, scenario index.
    saved: tuple[Progress, bool, int, dict[str, Any]] | None = field(default=None, compare=False, repr=False)

    @property
    def index_key(self) -> tuple[int, int]:
        return (self.progress.created_ms, self.id)

    def refresh(self, now_ms: int, *, poll: bool = False) -> None:
        """Bring the status up to `now_ms`; `poll` when this read is a GET of the job."""
        self.progress = lifecycle.advance(self.scenario.steps, self.progress, now_ms, poll=poll)


@dataclass
class Batch:
    """A Catalog batch written by an export job (one per job, or one per segment)."""

    id: str
    tenant: Tenant
    dataset_id: str
    job: ExportJob
    segment: dict[str, Any] | None
    client_id: str
    saved: dict[str, Any] | None = field(default=None, compare=False, repr=False)  # see batch_state


@dataclass
class TenantState:
    datasets: dict[str, Dataset] = field(default_factory=dict)
    jobs: dict[int, ExportJob] = field(default_factory=dict)
    # (creationTimeMs, id) ascending: the listing's cursor order, kept sorted on insert and delete.
    job_index: list[tuple[int, int]] = field(default_factory=list)
    batches: dict[str, Batch] = field(default_factory=dict)
    # Fault counters not bound to one job: (scenario name, operation) -> times fired.
    fault_hits: dict[tuple[str, str], int] = field(default_factory=dict)
    # Every job whose data the tenant keeps, oldest first: listed ones, and deleted ones whose batches stay.
    # This is what --max-jobs-per-tenant bounds.
    exports: dict[int, ExportJob] = field(default_factory=dict)

    def add_job(self, job: ExportJob) -> None:
        self.jobs[job.id] = job
        self.exports[job.id] = job
        key = job.index_key
        if not self.job_index or self.job_index[-1] < key:
            self.job_index.append(key)
        else:
            bisect.insort(self.job_index, key)

    def remove_job(self, job: ExportJob) -> None:
        """The job record only (a DELETE of a finished job): its batches and files stay."""
        del self.jobs[job.id]
        position = bisect.bisect_left(self.job_index, job.index_key)
        del self.job_index[position]

    def evict(self, job: ExportJob) -> None:
        """The job and everything it wrote, as if it had never existed."""
        if job.id in self.jobs:
            self.remove_job(job)
        del self.exports[job.id]
        for batch_id in job.batch_ids:
            self.batches.pop(batch_id, None)

    def jobs_descending(self, below: tuple[int, int] | None = None) -> Iterator[ExportJob]:
        """Jobs newest first, strictly before the cursor key when one is given."""
        end = len(self.job_index) if below is None else bisect.bisect_left(self.job_index, below)
        for position in range(end - 1, -1, -1):
            yield self.jobs[self.job_index[position][1]]

    def jobs_ascending(self, above: tuple[int, int] | None = None) -> Iterator[ExportJob]:
        start = 0 if above is None else bisect.bisect_right(self.job_index, above)
        for position in range(start, len(self.job_index)):
            yield self.jobs[self.job_index[position][1]]


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
    transitions = tuple(
        Transition(str(status), int(at_ms), None if phase is None else str(phase))
        for status, at_ms, phase in progress["transitions"]
    )
    if not transitions:
        raise ValueError(f"job {saved['id']} has no transitions")
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
