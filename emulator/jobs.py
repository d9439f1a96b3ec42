"""Export jobs domain: create, read (a poll), list, cancel, force, and the job's wire form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

from emulator import lifecycle
from emulator.catalog import Catalog
from emulator.clock import Clock
from emulator.errors import BadRequest, Conflict, NotFound, TooManyRequests
from emulator.exportlimits import check_export
from emulator.faults import Fault, take
from emulator.lifecycle import DATASET_WRITE, PROCESSING, STATUSES, SUCCEEDED, JobError
from emulator.options import DEFAULT_MAX_JOBS_PER_TENANT
from emulator.params import int_param
from emulator.scenarios import Choice, Scenario, ScenarioRegistry
from emulator.store import Batch, ExportJob, Store, Tenant, TenantState
from emulator.timestamps import rfc3339_ms

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
DEFAULT_SEGMENT_NS = "ups"
DEFAULT_SEGMENT_STATUS = ("realized", "existing")
# ASCII digits only: `\d` also matches other scripts' digits, which int() may reject.
_CURSOR = re.compile(r"([0-9]{1,18})_([0-9]{1,18})")
_SKIP = re.compile(r"[0-9]{1,9}")
# Past any real store; also keeps islice() within its index range for absurd start/page values.
MAX_SKIP = 10**12
SORT_FIELDS = {
    "creationTime": "createdTime",
    "createdTime": "createdTime",
    "updateTime": "updateTime",
}

CANCELLING = "Export job has been marked for cancelling"
DELETED = "Export job has been deleted"


@dataclass(frozen=True)
class ListQuery:
    limit: int
    cursor: tuple[int, int] | None
    skip: int
    status: str | None
    sort_field: str  # "createdTime" | "updateTime"
    descending: bool
    raw_sort: str | None


@dataclass(frozen=True)
class Created:
    """What a create request did: the job (None when a fault refused the request), the fault the request
    suffers, and how its scenario was chosen."""

    job: ExportJob | None
    fault: Fault | None
    choice: Choice


@dataclass(frozen=True)
class JobPage:
    records: list[ExportJob]
    query: ListQuery
    page_offset: str
    has_more: bool


class ExportJobs:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        scenarios: ScenarioRegistry,
        catalog: Catalog,
        *,
        max_per_tenant: int = DEFAULT_MAX_JOBS_PER_TENANT,
    ):
        self.store = store
        self.clock = clock
        self.scenarios = scenarios
        self.catalog = catalog
        self.max_per_tenant = max_per_tenant

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
        segments = normalized.get("filter", {}).get("segments", [])
        per_segment = normalized["destination"]["segmentPerBatch"]
        if per_segment and not segments:
            raise BadRequest("destination.segmentPerBatch: true needs at least one filter.segments entry")
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
            request_id=request_id or str(uuid.uuid4()),
            batch_ids=tuple(self.catalog.new_id(32) for _ in (segments if per_segment else [None])),
            progress=lifecycle.start(scenario.steps, self.clock.now_ms()),
            profile_instance_id=profile_instance_id or DEFAULT_SEGMENT_NS,
        )
        state.add_job(job)
        for index, batch_id in enumerate(job.batch_ids):
            segment = segments[index] if per_segment else None
            self.catalog.add_batch(Batch(batch_id, tenant, dataset_id, job, segment, client_id))
        return Created(job, fault, choice)

    def _make_room(self, tenant: Tenant) -> None:
        """At the cap, the tenant's oldest finished jobs go, with their batches (AEP keeps jobs for a
        while, then forgets them); when too few have finished, the new job is refused with a 429."""
        state = self.store.tenant(tenant)
        excess = len(state.exports) - self.max_per_tenant + 1
        if excess <= 0:
            return
        now_ms = self.clock.now_ms()
        finished: list[ExportJob] = []
        for job in state.exports.values():
            job.refresh(now_ms)
            if job.progress.is_terminal:
                finished.append(job)
                if len(finished) == excess:
                    break
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
        """A GET of the job (found with `get`): counts as a poll, then its status is computed."""
        job.refresh(self.clock.now_ms(), poll=True)
        return job

    def cancel(self, tenant: Tenant, job_id: str) -> str:
        """Cancel a live job or delete a finished one; returns AEP's message."""
        job = self.get(tenant, job_id)
        self.refresh(job)
        if job.progress.is_terminal:
            self.store.tenant(tenant).remove_job(job)
            return DELETED
        scenario = job.scenario
        job.progress = lifecycle.cancel(
            job.progress, scenario.cancel_status, scenario.cancel_errors, self.clock.now_ms()
        )
        return CANCELLING

    def force(self, job: ExportJob, status: str, errors: tuple[JobError, ...]) -> ExportJob:
        self.refresh(job)
        if job.progress.is_terminal:
            raise Conflict(
                f"Export job {job.id} is already {job.progress.status}; terminal states never change"
            )
        job.progress = lifecycle.force(job.progress, status, errors, self.clock.now_ms())
        return job

    # -- queries --------------------------------------------------------------------------------

    def get(self, tenant: Tenant, job_id: str) -> ExportJob:
        state = self.store.tenants.get(tenant)
        job = state.jobs.get(_job_number(job_id)) if state else None
        if job is None:
            raise NotFound(f"The export job '{job_id}' was not found")
        return job

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
        state = self.store.tenants.get(tenant) or TenantState()
        candidates = self._ordered(state, query)
        if query.status is not None:
            candidates = (job for job in candidates if job.progress.status == query.status)
        candidates = islice(candidates, query.skip, None)
        records = list(islice(candidates, query.limit))
        has_more = next(candidates, None) is not None
        last = records[-1] if records else None
        return JobPage(records, query, _cursor(last, query) if last else "", has_more)

    def _ordered(self, state: TenantState, query: ListQuery) -> Iterator[ExportJob]:
        if query.sort_field == "createdTime":
            jobs = (
                state.jobs_descending(query.cursor)
                if query.descending
                else state.jobs_ascending(query.cursor)
            )
            for job in jobs:
                self.refresh(job)
                yield job
            return
        # updateTime moves as jobs progress, so it has no standing index: sort on demand.
        for job in state.jobs.values():
            self.refresh(job)
        keyed = sorted(((job.progress.updated_ms, job.id), job) for job in state.jobs.values())
        if query.descending:
            keyed.reverse()
        for key, job in keyed:
            if query.cursor is not None and (
                key >= query.cursor if query.descending else key <= query.cursor
            ):
                continue
            yield job


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    limit = min(int_param(params, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
    cursor = None
    skip = int_param(params, "start", 0, minimum=0)
    offset = params.get("offset")
    if offset:
        match = _CURSOR.fullmatch(offset)
        if match:
            cursor = (int(match.group(1)), int(match.group(2)))
        elif _SKIP.fullmatch(offset):
            skip += int(offset)
        else:
            raise BadRequest(
                f"Query parameter 'offset' must be a cursor '<timeMs>_<id>' or a number, got '{offset}'"
            )
    page = int_param(params, "page", 1, minimum=1)
    skip += (page - 1) * limit
    status = params.get("status")
    if status is not None and status.upper() not in STATUSES:
        raise BadRequest(f"Query parameter 'status' must be one of {', '.join(STATUSES)}, got '{status}'")
    raw_sort = params.get("sort")
    sort_field, descending = "createdTime", True
    if raw_sort:
        name, _, direction = raw_sort.partition(":")
        if name not in SORT_FIELDS or direction not in ("", "asc", "desc"):
            raise BadRequest(
                f"Query parameter 'sort' must be creationTime|updateTime[:asc|:desc], got '{raw_sort}'"
            )
        sort_field, descending = SORT_FIELDS[name], direction != "asc"
    return ListQuery(
        limit=limit,
        cursor=cursor,
        skip=min(skip, MAX_SKIP),
        status=status.upper() if status else None,
        sort_field=sort_field,
        descending=descending,
        raw_sort=raw_sort,
    )


def next_link(page: JobPage) -> str:
    """Relative, like AEP's: `/export/jobs/?limit=N&offset=<cursor>`; "" on the last page."""
    if not page.has_more:
        return ""
    link = f"/export/jobs/?limit={page.query.limit}&offset={page.page_offset}"
    if page.query.status:
        link += f"&status={page.query.status}"
    if page.query.raw_sort:
        link += f"&sort={page.query.raw_sort}"
    return link


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


def job_json(job: ExportJob, counters: tuple[int, dict[str, int]] | None = None) -> dict[str, Any]:
    """The export job as AEP shows it; `counters` (total, by namespace) once it has succeeded."""
    request = job.request
    progress = job.progress
    # Only the fields AEP shows: a client's own batchId/batches or unknown keys are not echoed.
    destination: dict[str, Any] = {
        "datasetId": request["destination"]["datasetId"],
        "segmentPerBatch": request["destination"]["segmentPerBatch"],
    }
    if destination["segmentPerBatch"]:
        destination["batches"] = [
            {
                "segmentId": segment["segmentId"],
                "segmentNs": segment["segmentNs"],
                "status": segment["status"],
                "batchId": batch_id,
            }
            for segment, batch_id in zip(request["filter"]["segments"], job.batch_ids, strict=True)
        ]
    else:
        destination["batchId"] = job.batch_ids[0]
    body: dict[str, Any] = {
        "id": job.id,
        "jobType": "BATCH",
        "destination": destination,
        "schema": request["schema"],
        "imsOrgId": job.tenant.org,
        "status": progress.status,
    }
    for key in ("fields", "filter", "additionalFields", "mergePolicy", "evaluationInfo"):
        if key in request:
            body[key] = request[key]
    body["profileInstanceId"] = job.profile_instance_id
    if progress.errors:
        body["errors"] = [error.to_json() for error in progress.errors]
    body["metrics"] = _metrics(job, counters)
    body["computeGatewayJobId"] = _gateway_ids(job)
    body["creationTime"] = progress.created_ms
    body["updateTime"] = progress.updated_ms
    body["requestId"] = job.request_id
    return body


def _cursor(job: ExportJob, query: ListQuery) -> str:
    time_ms = job.progress.updated_ms if query.sort_field == "updateTime" else job.progress.created_ms
    return f"{time_ms}_{job.id}"


def _metrics(job: ExportJob, counters: tuple[int, dict[str, int]] | None) -> dict[str, Any]:
    timings = lifecycle.timings(job.progress)
    metrics: dict[str, Any] = {"totalTime": timings.total.to_json()}
    if timings.profile_export is not None:
        metrics["profileExportTime"] = timings.profile_export.to_json()
    if timings.dataset_write is not None:
        metrics["aCPDatasetWriteTime"] = timings.dataset_write.to_json()
    if counters is not None and job.progress.status == SUCCEEDED:
        metrics["totalExportedProfileCounter"] = counters[0]
        metrics["exportedProfileByNamespaceCounter"] = counters[1]
    return metrics


def _gateway_ids(job: ExportJob) -> dict[str, str]:
    """AEP shows the compute job once processing starts, and the push job once data is written."""
    transitions = job.progress.transitions
    ids: dict[str, str] = {}
    if job.progress.is_terminal or any(t.status == PROCESSING for t in transitions):
        ids["exportJob"] = _compute_job_id("export", job.tenant, job.id)
    if job.progress.status == SUCCEEDED or any(t.phase == DATASET_WRITE for t in transitions):
        ids["pushJob"] = _compute_job_id("push", job.tenant, job.id)
    return ids


@lru_cache(maxsize=8192)  # shown on every read of a job; a name-based UUID costs microseconds to derive
def _compute_job_id(kind: str, tenant: Tenant, job_id: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}-{tenant}-{job_id}"))


def _job_number(job_id: str) -> int:
    if not (job_id.isascii() and job_id.isdigit()) or len(job_id) > 18:
        raise NotFound(f"The export job '{job_id}' was not found")
    return int(job_id)
