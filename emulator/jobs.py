"""Export jobs domain: create, read (a poll), list, cancel, force, and the state a restart keeps."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from emulator import lifecycle
from emulator.catalog import Catalog
from emulator.catalog_views import export_format
from emulator.clock import Clock
from emulator.errors import BadRequest, Conflict, NotFound, TooManyRequests
from emulator.events import JOBS, EventHub
from emulator.exportlimits import check_export
from emulator.faults import Fault, take
from emulator.job_listing import JobPage, ListQuery, first_page
from emulator.lifecycle import JobError, oldest_finished
from emulator.options import DEFAULT_MAX_JOBS_PER_TENANT
from emulator.scenarios import Choice, Scenario, ScenarioRegistry
from emulator.store import (
    Batch,
    ExportJob,
    Store,
    Tenant,
    TenantState,
    job_from_state,
    job_state,
)
from emulator.timestamps import rfc3339_ms

DEFAULT_SEGMENT_NS = "ups"
DEFAULT_SEGMENT_STATUS = ("realized", "existing")
CANCELLING = "Export job has been marked for cancelling"
DELETED = "Export job has been deleted"


@dataclass(frozen=True)
class Created:
    """What a create request did: the job (None when a fault refused the request), the fault the request
    suffers, and how its scenario was chosen."""

    job: ExportJob | None
    fault: Fault | None
    choice: Choice


Definitions = tuple[tuple[str, str, str, str], ...]


def _no_check(tenant: Tenant, merge_policy_id: str) -> None:
    return None


def _no_definitions(tenant: Tenant, segment_ids: list[str]) -> Definitions:
    return ()


class ExportJobs:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        scenarios: ScenarioRegistry,
        catalog: Catalog,
        *,
        max_per_tenant: int = DEFAULT_MAX_JOBS_PER_TENANT,
        check_merge_policy: Callable[[Tenant, str], None] = _no_check,
        definitions: Callable[[Tenant, list[str]], Definitions] = _no_definitions,
        events: EventHub | None = None,
    ):
        """`check_merge_policy` refuses a `mergePolicy.id` the tenant does not have; `definitions` gives
        the segment definitions of the requested segment ids (snapshotted on the job)."""
        self.events = events or EventHub()
        self.store = store
        self.clock = clock
        self.scenarios = scenarios
        self.catalog = catalog
        self.max_per_tenant = max_per_tenant
        self.check_merge_policy = check_merge_policy
        self.definitions = definitions

    # -- commands -------------------------------------------------------------------------------

    def create(
        self,
        tenant: Tenant,
        request: dict[str, Any],
        *,
        requested_scenario: str | None,
        request_id: str | None,
        profile_instance_id: str | None,
        client_id: str,
    ) -> Created:
        """Create a job from a request the caller has validated against the create-request schema (it
        becomes the job's own), under the scenario chosen for it; the request may suffer that scenario's
        `create_job` fault, and one that refuses it creates nothing."""
        check_timestamps(request)
        normalized = normalize_request(request)
        dataset_id = normalized["destination"]["datasetId"]
        state = self.store.tenants.get(tenant)
        if state is None or dataset_id not in state.datasets:
            raise BadRequest(
                f"destination.datasetId: dataset '{dataset_id}' does not exist in "
                f"org '{tenant.org}', sandbox '{tenant.sandbox}'"
            )
        export_format(state.datasets[dataset_id])  # a 400 when the dataset's format cannot be written
        segments = normalized.get("filter", {}).get("segments", [])
        per_segment = normalized["destination"]["segmentPerBatch"]
        if per_segment and not segments:
            raise BadRequest("destination.segmentPerBatch: true needs at least one filter.segments entry")
        merge_policy = normalized.get("mergePolicy", {}).get("id")
        if merge_policy is not None:
            self.check_merge_policy(tenant, merge_policy)
        size = self.catalog.budget.size(tenant, state.held_bytes, normalized)  # before any change
        choice = self.scenarios.choose(requested_scenario, normalized)
        check_export(normalized, choice.scenario)
        fault = self.tenant_fault(tenant, choice.scenario, "create_job")
        if fault is not None and fault.refuses:
            return Created(None, fault, choice)
        self._make_room(tenant)
        self.scenarios.commit(choice)
        scenario = choice.scenario
        job = ExportJob(
            id=self.store.next_job_id(),
            tenant=tenant,
            request=normalized,
            scenario=scenario,
            request_id=request_id or _new_request_id(),
            batch_ids=tuple(self.catalog.new_id(32) for _ in (segments if per_segment else [None])),
            progress=lifecycle.start(scenario.steps, self.clock.now_ms()),
            profile_instance_id=profile_instance_id or DEFAULT_SEGMENT_NS,
            definitions=self.definitions(tenant, [s["segmentId"] for s in segments]),
            held_bytes=size,
        )
        state.add_job(job)
        for index, batch_id in enumerate(job.batch_ids):
            segment = segments[index] if per_segment else None
            self.catalog.add_batch(Batch(batch_id, tenant, dataset_id, job, segment, client_id))
        self.events.publish(JOBS)
        return Created(job, fault, choice)

    def _make_room(self, tenant: Tenant) -> None:
        """At the cap, the tenant's oldest finished jobs go, with their batches (AEP keeps jobs for a
        while, then forgets them); when too few have finished, the new job is refused with a 429."""
        state = self.store.tenant(tenant)
        excess = len(state.exports) - self.max_per_tenant + 1
        if excess <= 0:
            return
        finished = oldest_finished(state.exports.values(), excess, self.clock.now_ms())
        if len(finished) < excess:
            raise TooManyRequests(
                f"Org '{tenant.org}', sandbox '{tenant.sandbox}' already has {len(state.exports)} export "
                f"jobs and too few have finished to make room (the emulator's --max-jobs-per-tenant is "
                f"{self.max_per_tenant}); cancel some, let them finish, or reset the tenant"
            )
        for job in finished:
            state.evict(job)

    def job_fault(self, job: ExportJob, operation: str) -> Fault | None:
        """The fault a request on this job suffers under its scenario, if any, counting it."""
        return take(job.scenario.faults_for(operation), job.fault_hits, operation)

    def tenant_fault(self, tenant: Tenant, scenario: Scenario, operation: str) -> Fault | None:
        """The fault a request on no job (create, list) suffers, counted per tenant and scenario. The
        tenant's state is made only when there is a fault to count: a stray org header costs no memory."""
        faults = scenario.faults_for(operation)
        if not faults:
            return None
        return take(faults, self.store.tenant(tenant).fault_hits, (scenario.name, operation))

    def list_fault(self, tenant: Tenant) -> Fault | None:
        """Listing concerns no job: the default scenario's `list_jobs` faults apply."""
        return self.tenant_fault(tenant, self.scenarios.get(self.scenarios.default), "list_jobs")

    def poll(self, job: ExportJob) -> ExportJob:
        """A GET of the job (found with `get`, maybe before an await): counts as a poll, then its status is
        computed."""
        self._current(job)
        job.refresh(self.clock.now_ms(), poll=True)
        job.polls += 1
        self.events.publish(JOBS)
        return job

    def cancel(self, job: ExportJob) -> str:
        """Cancel a live job or delete a finished one (found with `get`, maybe before an await); returns
        AEP's message."""
        self._current(job)
        self.refresh(job)
        if job.progress.is_terminal:
            self.store.tenant(job.tenant).remove_job(job)
            self.events.publish(JOBS)
            return DELETED
        scenario = job.scenario
        job.set_progress(
            lifecycle.cancel(
                job.progress, scenario.cancel_status, scenario.cancel_errors, self.clock.now_ms()
            )
        )
        self.events.publish(JOBS)
        return CANCELLING

    def force(self, job: ExportJob, status: str, errors: tuple[JobError, ...]) -> ExportJob:
        self.refresh(job)
        if job.progress.is_terminal:
            raise Conflict(
                f"Export job {job.id} is already {job.progress.status}; terminal states never change"
            )
        job.set_progress(lifecycle.force(job.progress, status, errors, self.clock.now_ms()))
        self.events.publish(JOBS)
        return job

    # -- queries --------------------------------------------------------------------------------

    def get(self, tenant: Tenant, job_id: str) -> ExportJob:
        state = self.store.tenants.get(tenant)
        job = state.jobs.get(_job_number(job_id)) if state else None
        if job is None:
            raise NotFound(f"The export job '{job_id}' was not found")
        return job

    def _current(self, job: ExportJob) -> None:
        """A reset is a boundary: a request that found `job` and then waited (a scenario delay) acts on it
        only if the store still holds that very object. After a reset (of everything or of the job's
        tenant), or a DELETE meanwhile, it does not, even if a new job has the same id: the request answers
        as its own world now would, 404."""
        state = self.store.tenants.get(job.tenant)
        if state is None or state.jobs.get(job.id) is not job:
            raise NotFound(f"The export job '{job.id}' was not found")

    def refresh(self, job: ExportJob) -> None:
        """Bring a job's status up to the clock without counting a poll."""
        job.refresh(self.clock.now_ms())

    def all_jobs(self) -> Iterator[ExportJob]:
        for state in self.store.tenants.values():
            for job in state.jobs.values():
                self.refresh(job)
                yield job

    def find(self, job_id: str) -> ExportJob:
        """Any tenant's job (control plane only)."""
        number = _job_number(job_id)
        for state in self.store.tenants.values():
            if number in state.jobs:
                return state.jobs[number]
        raise NotFound(f"The export job '{job_id}' was not found")

    def list(self, tenant: Tenant, query: ListQuery) -> JobPage:
        return first_page(self.store.tenants.get(tenant) or TenantState(), query, self.clock.now_ms())

    # -- state file (emulator/persistence.py) ---------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Every job a tenant keeps (listed, or deleted with its data kept), the scenarios they were created
        with (each saved once), the per-tenant fault counters, and the last job id."""
        scenarios: dict[int, tuple[int, Scenario]] = {}  # id() -> (index, scenario); all alive meanwhile
        tenants = [
            {
                "org": tenant.org,
                "sandbox": tenant.sandbox,
                "faultHits": [
                    [name, operation, hits] for (name, operation), hits in state.fault_hits.items()
                ],
                "jobs": [
                    job_state(
                        job,
                        job.id in state.jobs,
                        scenarios.setdefault(id(job.scenario), (len(scenarios), job.scenario))[0],
                    )
                    for job in state.exports.values()
                ],
            }
            for tenant, state in self.store.tenants.items()
            if state.exports or state.fault_hits
        ]
        saved = [self.scenarios.saved(scenario) for _, scenario in scenarios.values()]
        return {"lastJobId": self.store.last_job_id, "scenarios": saved, "tenants": tenants}

    def restore(self, state: Mapping[str, Any]) -> tuple[Callable[[], None], dict[int, ExportJob]]:
        """Check a saved `state()`: the commit that puts it into an emptied store (it cannot fail), and the
        jobs by id (their batches are the catalog's)."""
        table = dict(enumerate(self.scenarios.revive(saved) for saved in state["scenarios"]))
        last_job_id = int(state["lastJobId"])
        jobs: dict[int, ExportJob] = {}
        tenants: dict[Tenant, tuple[list[ExportJob], dict[tuple[str, str], int]]] = {}
        for saved in state["tenants"]:
            tenant = Tenant(str(saved["org"]), str(saved["sandbox"]))
            if tenant in tenants:
                raise ValueError(f"tenant {tenant} appears twice")
            listed: list[ExportJob] = []
            for raw in saved["jobs"]:
                job = jobs[int(raw["id"])] = job_from_state(tenant, raw, table[raw["scenario"]])
                listed += [job] if raw["listed"] else []
            hits = {(str(name), str(op)): int(count) for name, op, count in saved["faultHits"]}
            tenants[tenant] = (sorted(listed, key=lambda one: one.index_key), hits)
        if len(jobs) != sum(len(saved["jobs"]) for saved in state["tenants"]):
            raise ValueError("a job id appears twice")
        if jobs and max(jobs) > last_job_id:
            raise ValueError(f"job {max(jobs)} is past lastJobId {last_job_id}: new jobs would reuse its id")
        for job in jobs.values():
            steps = len(job.scenario.steps)
            if job.progress.step >= steps:
                raise ValueError(f"job {job.id} is at step {job.progress.step} of a {steps}-step scenario")

        def commit() -> None:
            self.store.last_job_id = last_job_id
            for job in sorted(jobs.values(), key=lambda one: one.id):  # kept in creation order
                self.store.tenant(job.tenant).exports[job.id] = job
            for tenant, (listed, hits) in tenants.items():
                self.store.tenant(tenant).fault_hits = hits
                for job in listed:
                    self.store.tenant(tenant).add_job(job)

        return commit, jobs


TIMESTAMP_FIELDS = (
    ("filter", "segmentQualificationTime", "startTime"),
    ("filter", "segmentQualificationTime", "endTime"),
    ("filter", "fromIngestTimestamp"),
    ("additionalFields", "eventList", "filter", "fromIngestTimestamp"),
    ("additionalFields", "eventList", "filter", "toIngestTimestamp"),
)


def check_timestamps(request: dict[str, Any]) -> None:
    """The schema checks the RFC 3339 shape; this rejects impossible dates such as 2018-02-30."""
    for path in TIMESTAMP_FIELDS:
        value: Any = request
        for key in path:
            # dict, not Mapping: a parsed body holds dicts, and an ABC isinstance is 5x slower.
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            try:
                rfc3339_ms(value)
            except ValueError:
                raise BadRequest(
                    f"Invalid request body: $.{'.'.join(path)}: '{value}' "
                    "is not a valid RFC 3339 timestamp (rule: format)"
                ) from None


def normalize_request(request: dict[str, Any]) -> dict[str, Any]:
    """The request with AEP's documented defaults filled in (these are echoed on the job), in place: a
    parsed request body belongs to its request alone, so copying it would only cost time. Idempotent."""
    normalized = request
    for segment in normalized.get("filter", {}).get("segments", []):
        segment.setdefault("segmentNs", DEFAULT_SEGMENT_NS)
        segment.setdefault("status", list(DEFAULT_SEGMENT_STATUS))
    normalized["destination"].setdefault("segmentPerBatch", False)
    merge_policy = normalized.get("mergePolicy")
    if merge_policy is not None and "id" in merge_policy:
        merge_policy.setdefault("version", 1)
    return normalized


# Request ids for creates that came without one: random version-4 UUIDs, as AEP's, but formatted from a
# generator seeded once (uuid.uuid4() makes a system call for its 16 bytes and builds a UUID object: 3 us,
# against 1 us; nothing needs them unpredictable).
_REQUEST_IDS = random.Random()


def _new_request_id() -> str:
    digits = f"{_REQUEST_IDS.getrandbits(128):032x}"
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def _job_number(job_id: str) -> int:
    if not (job_id.isascii() and job_id.isdigit()) or len(job_id) > 18:
        raise NotFound(f"The export job '{job_id}' was not found")
    return int(job_id)
