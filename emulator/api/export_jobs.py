"""Profile export jobs: /data/core/ups/export/jobs (create, list, get = poll, delete = cancel or delete)."""

from __future__ import annotations

import orjson
from aiohttp import web

from emulator.api.common import JSON, Call, client_request_id, json_response, read_json
from emulator.backend import Backend
from emulator.job_listing import next_link, parse_list_query
from emulator.job_view import job_json
from emulator.jsonio import dumps
from emulator.scenarios import Choice
from emulator.store import ExportJob

PREFIX = "/data/core/ups/export/jobs"
# The emulator's own headers: a client asks for a scenario by name; the create response says which applied.
SCENARIO_HEADER = "x-emulator-scenario"
SCENARIO_APPLIED_HEADER = "x-emulator-scenario-applied"


async def create_job(call: Call) -> web.Response:
    backend = call.backend
    body = await read_json(call, "export-job.create.request")
    requested = call.headers.get(SCENARIO_HEADER)
    created = backend.jobs.create(
        call.own_tenant,
        body,
        requested_scenario=requested,
        request_id=client_request_id(call.request),
        profile_instance_id=call.headers.get("x-profile-instance-id"),
        client_id=call.client_id,
    )
    call.concerns(created.job, created.choice.scenario)
    applied = scenario_choice_headers(call, created.choice, requested)
    if created.fault is not None:
        await backend.faults.apply(created.fault)  # a fault that refuses the request raises here
    job = created.job
    assert job is not None, "only a refusing fault leaves no job, and it has raised"
    headers = {"X-Location": f"{PREFIX}/{job.id}", **applied}
    # Not through the cache: a new job's first poll usually moves it on, so keeping its creation state
    # would cost memory (about 800 bytes a job) for nothing.
    await backend.prepare_counters((job,))  # counted off the event loop
    body = dumps(job_json(job, backend.job_counters(job)))
    return web.Response(body=body, headers=headers, content_type=JSON)


def scenario_choice_headers(call: Call, choice: Choice, requested: str | None) -> dict[str, str]:
    """A created job's scenario, as the client sees it: the applied one when it asked for one by name, and a
    journal note when the queue overrode that request."""
    if choice.overrode is not None:
        call.note = (
            f"the queued scenario '{choice.scenario.name}' applied instead of the requested "
            f"'{choice.overrode}' ({SCENARIO_HEADER})"
        )
    return {} if requested is None else {SCENARIO_APPLIED_HEADER: choice.scenario.name}


async def list_jobs(call: Call) -> web.Response:
    backend = call.backend
    tenant = call.own_tenant
    query = parse_list_query(call.query)
    await backend.faults.apply(backend.jobs.list_fault(tenant))
    page = backend.jobs.list(tenant, query)
    await backend.prepare_counters(page.records)  # counted off the event loop
    return json_response(
        {
            # Each record's cached bytes, embedded as they are.
            "records": [
                orjson.Fragment(_cached_job_bytes(job) or _encode_job(backend, job)) for job in page.records
            ],
            "page": {
                "sortField": query.sort_field,
                "sort": "desc" if query.descending else "asc",
                "pageOffset": page.page_offset,
                "pageSize": len(page.records),
            },
            "link": {"next": next_link(page)},
        }
    )


async def get_job(call: Call) -> web.Response:
    backend = call.backend
    job = backend.jobs.get(call.own_tenant, call.params["job_id"])
    call.concerns(job)
    fault = backend.jobs.job_fault(job, "get_job")
    if fault is not None:
        # A delay lets other requests run: a DELETE or a reset meanwhile makes the poll a 404 (see poll).
        await backend.faults.apply(fault)
    backend.jobs.poll(job)
    body = _cached_job_bytes(job)
    if body is None:
        await backend.prepare_counters((job,))  # counted off the event loop, and only to encode
        body = _encode_job(backend, job)
    return web.Response(body=body, content_type=JSON)


async def delete_job(call: Call) -> web.Response:
    backend = call.backend
    job = backend.jobs.get(call.own_tenant, call.params["job_id"])
    call.concerns(job)
    await backend.faults.apply(backend.jobs.job_fault(job, "cancel_job"))
    message = backend.jobs.cancel(job)  # a 404 when a DELETE or a reset came first (see cancel)
    return json_response({"status": True, "message": message})


def _cached_job_bytes(job: ExportJob) -> bytes | None:
    """`job_json` as JSON bytes, encoded once per displayed state and reused by every GET: building the
    wire form costs about 7 us, a tenth of a poll, and what a job shows changes only with a transition
    (status, errors, timings and gateway ids derive from them; counters come with SUCCEEDED). So the bytes
    are keyed on the transitions tuple, held so that its identity cannot be reused. None: not encoded in
    this state yet."""
    cached = job.wire
    return cached[1] if cached is not None and cached[0] is job.progress.transitions else None


def _encode_job(backend: Backend, job: ExportJob) -> bytes:
    """The job's bytes, encoded now and cached (its counters prepared first: see Backend.prepare_counters)."""
    transitions = job.progress.transitions
    data = dumps(job_json(job, backend.job_counters(job)))
    job.wire = (transitions, data)
    return data
