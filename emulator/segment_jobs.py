"""Segment jobs (/data/core/ups/segment/jobs): evaluate definitions, driven by the scenario engine.

A segment job snapshots its definitions (expression and merge policy) when it is created; its metrics,
once SUCCEEDED, count the members those definitions select in the tenant's population (computed by the
exported-data service, see Backend.segment_job_metrics). Status is computed when read, from the job's
scenario (`kind: segment`), the clock and its polls, as for export jobs. A DELETE of a live job moves it
to CANCELLING, and on the next poll (or 5 s later on the emulator clock) to CANCELLED.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator import lifecycle
from emulator.clock import Clock
from emulator.errors import BadRequest, Conflict, NotFound, TooManyRequests
from emulator.faults import Fault, take
from emulator.lifecycle import JobError, Progress, Step, oldest_finished, transitions_from_state
from emulator.merge_policies import PROFILE_SCHEMA, MergePolicies, ids_of
from emulator.params import int_param
from emulator.scenario_steps import CANCELLING, KIND_STATUSES, SEGMENT
from emulator.scenarios import Choice, Scenario, ScenarioRegistry
from emulator.segments import SegmentDefinitions
from emulator.store import Tenant

ALL_SEGMENTS = "*"
STATUSES = KIND_STATUSES[SEGMENT]
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
CANCEL_SECONDS = 5.0  # CANCELLING lasts until the next poll, or this long on the emulator clock
SORT_FIELDS = ("creationTime", "updateTime")


@dataclass(frozen=True)
class SegmentRef:
    """A segment a job evaluates, as its definition was when the job was created."""

    id: str
    name: str
    expression: dict[str, str]
    merge_policy_id: str
    merge_policy_version: int


@dataclass
class SegmentJob:
    id: str
    tenant: Tenant
    segments: tuple[SegmentRef, ...]
    all_segments: bool  # created with segmentId "*"
    scenario: Scenario
    request_id: str
    batch_id: str
    compute_job_id: int
    progress: Progress
    profile_instance_id: str = "ups"
    schema_name: str = PROFILE_SCHEMA
    cancel_step: int | None = None  # the step at which a DELETE found the job, when it did
    fault_hits: dict[str, int] = field(default_factory=dict)

    @property
    def steps(self) -> tuple[Step, ...]:
        steps = self.scenario.steps
        if self.cancel_step is None:
            return steps
        scenario = self.scenario
        final = Step(
            scenario.cancel_status, after_polls=1, after_seconds=CANCEL_SECONDS, errors=scenario.cancel_errors
        )
        return (*steps[: self.cancel_step + 1], Step(CANCELLING), final)

    def refresh(self, now_ms: int, *, poll: bool = False) -> None:
        self.progress = lifecycle.advance(self.steps, self.progress, now_ms, poll=poll)


@dataclass(frozen=True)
class Created:
    job: SegmentJob | None
    fault: Fault | None
    choice: Choice


@dataclass(frozen=True)
class JobPage:
    jobs: list[SegmentJob]
    total: int
    skip: int
    limit: int
    query: Mapping[str, str]


class SegmentJobs:
    def __init__(
        self,
        clock: Clock,
        scenarios: ScenarioRegistry,
        definitions: SegmentDefinitions,
        merge_policies: MergePolicies,
        *,
        max_per_tenant: int,
        max_processing: int = 0,
    ):
        self.clock = clock
        self.scenarios = scenarios
        self.definitions = definitions
        self.merge_policies = merge_policies
        self.max_per_tenant = max_per_tenant
        self.max_processing = max_processing  # 0: no limit
        self._tenants: dict[Tenant, dict[str, SegmentJob]] = {}
        self._fault_hits: dict[Tenant, dict[tuple[str, str], int]] = {}
        self._compute_ids = 0

    def reset(self, tenant: Tenant | None = None) -> None:
        if tenant is None:
            self._tenants.clear()
            self._fault_hits.clear()
            self._compute_ids = 0
        else:
            self._tenants.pop(tenant, None)
            self._fault_hits.pop(tenant, None)

    # -- commands

    def create(
        self,
        tenant: Tenant,
        request: Any,
        *,
        requested_scenario: str | None,
        request_id: str | None,
        profile_instance_id: str | None,
    ) -> Created:
        """A job from a request validated against segment-job.create.request: `[{"segmentId"}...]`, or
        `{"schema", "segments": [{"segmentId": "*"}]}` for every definition of the tenant."""
        wanted = request if isinstance(request, list) else request["segments"]
        ids = list(dict.fromkeys(str(entry["segmentId"]) for entry in wanted))
        every = ALL_SEGMENTS in ids
        refs = self._refs(tenant, ids, every)
        documents: list[Mapping[str, Any]] = [
            {"segmentId": ref.id, "name": ref.name, "expression": ref.expression} for ref in refs
        ]
        choice = self.scenarios.choose(requested_scenario, documents, SEGMENT)
        fault = self.tenant_fault(tenant, choice.scenario, "create_job")
        if fault is not None and fault.refuses:
            return Created(None, fault, choice)
        jobs = self._tenants.setdefault(tenant, {})
        self._check_processing(tenant, jobs)
        self._make_room(tenant, jobs)
        self.scenarios.commit(choice)
        self._compute_ids += 1
        schema = request.get("schema", {}) if isinstance(request, dict) else {}
        job = SegmentJob(
            id=str(uuid.uuid4()),
            tenant=tenant,
            segments=refs,
            all_segments=every,
            scenario=choice.scenario,
            request_id=request_id or str(uuid.uuid4()),
            batch_id=str(uuid.uuid4()),
            compute_job_id=self._compute_ids,
            progress=lifecycle.start(choice.scenario.steps, self.clock.now_ms()),
            profile_instance_id=profile_instance_id or "ups",
            schema_name=str(schema.get("name") or PROFILE_SCHEMA),
        )
        jobs[job.id] = job
        return Created(job, fault, choice)

    def _refs(self, tenant: Tenant, ids: list[str], every: bool) -> tuple[SegmentRef, ...]:
        if every:
            chosen = self.definitions.of_tenant(tenant)
            if not chosen:
                raise BadRequest(
                    f"segmentId '*': org '{tenant.org}', sandbox '{tenant.sandbox}' "
                    "has no segment definitions"
                )
        else:
            chosen = []
            for segment_id in ids:
                definition = self.definitions.find(tenant, segment_id)
                if definition is None:
                    raise BadRequest(
                        f"Invalid request body: segmentId '{segment_id}' is not a segment definition of org "
                        f"'{tenant.org}', sandbox '{tenant.sandbox}'"
                    )
                chosen.append(definition)
        return tuple(
            SegmentRef(
                d.id,
                str(d.body["name"]),
                dict(d.expression),
                str(d.body["mergePolicyId"]),
                self._policy_version(tenant, str(d.body["mergePolicyId"])),
            )
            for d in chosen
        )

    def _policy_version(self, tenant: Tenant, policy_id: str) -> int:
        try:
            return self.merge_policies.version(tenant, policy_id)
        except NotFound:
            return 1  # the policy was deleted since the definition named it

    def _check_processing(self, tenant: Tenant, jobs: dict[str, SegmentJob]) -> None:
        """The spec's 429: too many segment jobs in processing (off unless --max-segment-jobs-processing)."""
        if not self.max_processing:
            return
        now_ms = self.clock.now_ms()
        live = 0
        for job in jobs.values():
            job.refresh(now_ms)
            live += not job.progress.is_terminal
        if live >= self.max_processing:
            raise TooManyRequests(
                f"There are too many segmentation jobs in processing at the moment ({live} in org "
                f"'{tenant.org}', sandbox '{tenant.sandbox}'; the emulator's --max-segment-jobs-processing "
                f"is {self.max_processing}). Try again at a later time."
            )

    def _make_room(self, tenant: Tenant, jobs: dict[str, SegmentJob]) -> None:
        excess = len(jobs) - self.max_per_tenant + 1
        if excess <= 0:
            return
        finished = oldest_finished(jobs.values(), excess, self.clock.now_ms())
        if len(finished) < excess:
            raise TooManyRequests(
                f"Org '{tenant.org}', sandbox '{tenant.sandbox}' already has {len(jobs)} segment jobs and "
                f"too few have finished to make room (--max-jobs-per-tenant is {self.max_per_tenant})"
            )
        for job in finished:
            del jobs[job.id]

    def poll(self, job: SegmentJob) -> SegmentJob:
        job.refresh(self.clock.now_ms(), poll=True)
        return job

    def cancel(self, tenant: Tenant, job_id: str) -> bool:
        """Cancel a live job (True) or delete a finished one (False)."""
        job = self.get(tenant, job_id)
        self.refresh(job)
        if job.progress.is_terminal:
            del self._tenants[tenant][job.id]
            return False
        if job.progress.status == CANCELLING:
            return True
        step = job.progress.step
        moved = lifecycle.force(job.progress, CANCELLING, (), self.clock.now_ms())
        job.cancel_step = step
        job.progress = moved._replace(step=step + 1, pinned=False)
        return True

    def force(self, job: SegmentJob, status: str, errors: tuple[JobError, ...]) -> SegmentJob:
        self.refresh(job)
        if job.progress.is_terminal:
            raise Conflict(
                f"Segment job {job.id} is already {job.progress.status}; terminal states never change"
            )
        if status not in STATUSES:
            raise BadRequest(f"Invalid request body: $.status: segment jobs are {', '.join(STATUSES)}")
        job.progress = lifecycle.force(job.progress, status, errors, self.clock.now_ms())
        return job

    # -- faults

    def job_fault(self, job: SegmentJob, operation: str) -> Fault | None:
        return take(job.scenario.faults_for(operation), job.fault_hits, operation)

    def tenant_fault(self, tenant: Tenant, scenario: Scenario, operation: str) -> Fault | None:
        faults = scenario.faults_for(operation)
        if not faults:
            return None
        return take(faults, self._fault_hits.setdefault(tenant, {}), (scenario.name, operation))

    def list_fault(self, tenant: Tenant) -> Fault | None:
        """Listing concerns no job: the default segment scenario's `list_jobs` faults apply."""
        return self.tenant_fault(tenant, self.scenarios.get(self.scenarios.defaults[SEGMENT]), "list_jobs")

    # -- queries

    def get(self, tenant: Tenant, job_id: str) -> SegmentJob:
        job = self._tenants.get(tenant, {}).get(job_id)
        if job is None:
            raise NotFound(f"The segment job '{job_id}' was not found")
        return job

    def refresh(self, job: SegmentJob) -> None:
        job.refresh(self.clock.now_ms())

    def find(self, job_id: str) -> SegmentJob | None:
        """Any tenant's job (control plane only)."""
        for jobs in self._tenants.values():
            if job_id in jobs:
                return jobs[job_id]
        return None

    def all_jobs(self, tenant: Tenant | None = None) -> Iterator[SegmentJob]:
        tenants = self._tenants.values() if tenant is None else [self._tenants.get(tenant, {})]
        for jobs in tenants:
            for job in jobs.values():
                self.refresh(job)
                yield job

    def bulk_get(self, tenant: Tenant, body: Any) -> list[SegmentJob]:
        """The tenant's jobs among a bulk-get body's ids (unknown ids are left out)."""
        jobs = self._tenants.get(tenant, {})
        found = [jobs[i] for i in dict.fromkeys(ids_of(body)) if i in jobs]
        for job in found:
            self.refresh(job)
        return found

    def list(self, tenant: Tenant, query: Mapping[str, str], view: Callable[[SegmentJob], Any]) -> JobPage:
        """`view` gives a job's wire form, for the `property` filter (`path==value`, `array~key==value`)."""
        limit = min(int_param(query, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
        skip = int_param(query, "start", 0, minimum=0)
        status = query.get("status")
        if status is not None and status.upper() not in STATUSES:
            raise BadRequest(f"Query parameter 'status' must be one of {', '.join(STATUSES)}, got '{status}'")
        raw_sort = query.get("sort") or "creationTime:desc"
        field_name, _, direction = raw_sort.partition(":")
        if field_name not in SORT_FIELDS or direction not in ("", "asc", "desc"):
            raise BadRequest(
                f"Query parameter 'sort' must be creationTime|updateTime[:asc|:desc], got '{raw_sort}'"
            )
        matcher = _property_matcher(query.get("property"))
        jobs = list(self.all_jobs(tenant))
        if status:
            jobs = [job for job in jobs if job.progress.status == status.upper()]
        if query.get("snapshot.name"):
            jobs = []  # jobs created through the API evaluate no snapshot
        if matcher is not None:
            jobs = [job for job in jobs if matcher(view(job))]
        index = 0 if field_name == "creationTime" else -1
        jobs.sort(key=lambda job: (job.progress.transitions[index].at_ms, job.compute_job_id))
        if direction != "asc":
            jobs.reverse()
        return JobPage(jobs[skip : skip + limit], len(jobs), skip, limit, query)

    # -- state file

    def state(self) -> dict[str, Any]:
        scenarios: dict[int, tuple[int, Scenario]] = {}
        tenants = []
        for tenant, jobs in self._tenants.items():
            saved = []
            for job in jobs.values():
                index = scenarios.setdefault(id(job.scenario), (len(scenarios), job.scenario))[0]
                saved.append(_job_state(job, index))
            hits = self._fault_hits.get(tenant, {})
            if saved or hits:
                tenants.append(
                    {
                        "org": tenant.org,
                        "sandbox": tenant.sandbox,
                        "jobs": saved,
                        "faultHits": [[name, op, count] for (name, op), count in hits.items()],
                    }
                )
        return {
            "computeJobIds": self._compute_ids,
            "scenarios": [self.scenarios.saved(scenario) for _, scenario in scenarios.values()],
            "tenants": tenants,
        }

    def restore(self, state: Mapping[str, Any]) -> Callable[[], None]:
        table = dict(enumerate(self.scenarios.revive(saved) for saved in state.get("scenarios", [])))
        tenants: dict[Tenant, dict[str, SegmentJob]] = {}
        hits: dict[Tenant, dict[tuple[str, str], int]] = {}
        for saved in state.get("tenants", []):
            tenant = Tenant(str(saved["org"]), str(saved["sandbox"]))
            tenants[tenant] = {
                str(raw["id"]): _job_from_state(tenant, raw, table[raw["scenario"]]) for raw in saved["jobs"]
            }
            hits[tenant] = {(str(n), str(o)): int(c) for n, o, c in saved.get("faultHits", [])}
        compute_ids = int(state.get("computeJobIds", 0))

        def commit() -> None:
            self._tenants, self._fault_hits, self._compute_ids = tenants, hits, compute_ids

        return commit


def _property_matcher(raw: str | None) -> Callable[[Mapping[str, Any]], bool] | None:
    """`path==value` (dot path into the job) or `array~key==value` (any item of an array)."""
    if not raw:
        return None
    path, separator, wanted = raw.partition("==")
    if not separator or not path:
        raise BadRequest(
            f"Query parameter 'property' must be [jsonObjectPath]==[value] or "
            f"[arrayTypeAttributeName]~[objectKey]==[value], got '{raw}'"
        )
    array, tilde, key = path.partition("~")

    def lookup(document: Any, dotted: str) -> Any:
        for part in dotted.split("."):
            document = document.get(part) if isinstance(document, Mapping) else None
        return document

    def matches(job: Mapping[str, Any]) -> bool:
        if tilde:
            items = lookup(job, array)
            return isinstance(items, list) and any(_text(lookup(item, key)) == wanted for item in items)
        return _text(lookup(job, path)) == wanted

    return matches


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _job_state(job: SegmentJob, scenario: int) -> dict[str, Any]:
    progress = job.progress
    return {
        "id": job.id,
        "scenario": scenario,
        "segments": [
            [ref.id, ref.name, ref.expression, ref.merge_policy_id, ref.merge_policy_version]
            for ref in job.segments
        ],
        "allSegments": job.all_segments,
        "requestId": job.request_id,
        "batchId": job.batch_id,
        "computeJobId": job.compute_job_id,
        "profileInstanceId": job.profile_instance_id,
        "schemaName": job.schema_name,
        "cancelStep": job.cancel_step,
        "faultHits": dict(job.fault_hits),
        "progress": {
            "step": progress.step,
            "pollsInStep": progress.polls_in_step,
            "transitions": [[t.status, t.at_ms, t.phase] for t in progress.transitions],
            "errors": [[e.code, e.msg, e.call_stack] for e in progress.errors],
            "pinned": progress.pinned,
        },
    }


def _job_from_state(tenant: Tenant, saved: Mapping[str, Any], scenario: Scenario) -> SegmentJob:
    progress = saved["progress"]
    transitions = transitions_from_state(progress, f"segment job {saved['id']}")
    cancel_step = saved.get("cancelStep")
    return SegmentJob(
        id=str(saved["id"]),
        tenant=tenant,
        segments=tuple(
            SegmentRef(str(i), str(n), {str(k): str(v) for k, v in e.items()}, str(m), int(v))
            for i, n, e, m, v in saved["segments"]
        ),
        all_segments=bool(saved["allSegments"]),
        scenario=scenario,
        request_id=str(saved["requestId"]),
        batch_id=str(saved["batchId"]),
        compute_job_id=int(saved["computeJobId"]),
        progress=Progress(
            step=int(progress["step"]),
            polls_in_step=int(progress["pollsInStep"]),
            transitions=transitions,
            errors=tuple(JobError(str(c), str(m), str(s)) for c, m, s in progress["errors"]),
            pinned=bool(progress["pinned"]),
        ),
        profile_instance_id=str(saved["profileInstanceId"]),
        schema_name=str(saved["schemaName"]),
        cancel_step=None if cancel_step is None else int(cancel_step),
        fault_hits={str(k): int(v) for k, v in saved["faultHits"].items()},
    )
