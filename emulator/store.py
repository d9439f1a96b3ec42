"""Tenant-partitioned in-memory state: the objects, keyed by id, and an ordered index for job listing."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from emulator import lifecycle
from emulator.lifecycle import Progress, Transition
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
    # The job's wire form, encoded once per displayed state (see api/export_jobs._job_bytes): the
    # transitions it was encoded at, and the bytes.
    wire: tuple[tuple[Transition, ...], bytes] | None = field(default=None, compare=False, repr=False)

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
