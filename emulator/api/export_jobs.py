"""Export jobs: /data/core/ups/export/jobs (create, list, get = poll, delete = cancel or delete)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from emulator.api.common import JSON, apply_fault, backend_of, client_request_id, json_response, read_json
from emulator.backend import Backend
from emulator.gateway import CLIENT_ID, tenant_of
from emulator.jobs import (
    check_timestamps,
    job_json,
    next_link,
    normalize_request,
    parse_list_query,
    take_job_fault,
    take_tenant_fault,
)
from emulator.store import ExportJob

PREFIX = "/data/core/ups/export/jobs"
SCENARIO_HEADER = "x-emulator-scenario"


async def create_job(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    body = await read_json(request, "export-job.create.request")
    check_timestamps(body)
    header = request.headers.get(SCENARIO_HEADER)
    scenario = backend.scenarios.peek(header, normalize_request(body))
    fault = take_tenant_fault(backend.store, tenant, scenario, "create_job")
    # A refused request creates nothing. Otherwise the job is created before any awaited delay, in the
    # same step as the peek above, so the job gets the scenario whose fault it suffered.
    if fault is not None and fault.refuses:
        await apply_fault(fault)
    job = backend.jobs.create(
        tenant,
        body,
        scenario_header=header,
        request_id=client_request_id(request),
        profile_instance_id=request.headers.get("x-profile-instance-id"),
        client_id=request[CLIENT_ID],
    )
    await apply_fault(fault)
    # Not through the cache of job_body: a new job's first poll usually moves it on, so caching its
    # creation state would cost memory (about 800 bytes a job) for nothing.
    body = _dumps(job_json(job, backend.job_counters(job)))
    return web.Response(body=body, headers={"X-Location": f"{PREFIX}/{job.id}"}, content_type=JSON)


async def list_jobs(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    query = parse_list_query(request.query)
    default = backend.scenarios.get(backend.scenarios.default)
    await apply_fault(take_tenant_fault(backend.store, tenant, default, "list_jobs"))
    page = backend.jobs.list(tenant, query)
    # The body as json_response would encode it, built around each record's cached bytes.
    rest = _dumps(
        {
            "page": {
                "sortField": query.sort_field,
                "sort": "desc" if query.descending else "asc",
                "pageOffset": page.page_offset,
                "pageSize": len(page.records),
            },
            "link": {"next": next_link(page)},
        }
    )
    records = b",".join(job_body(backend, job) for job in page.records)
    return web.Response(body=b'{"records":[' + records + b"]," + rest[1:], content_type=JSON)


async def get_job(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    job_id = request.match_info["job_id"]
    job = backend.jobs.get(tenant, job_id)
    fault = take_job_fault(job, "get_job")
    if fault is not None:
        await apply_fault(fault)
        job = backend.jobs.get(tenant, job_id)  # a delay lets other requests run: one may delete it
    backend.jobs.poll(job)
    return web.Response(body=job_body(backend, job), content_type=JSON)


async def delete_job(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    job = backend.jobs.get(tenant, request.match_info["job_id"])
    await apply_fault(take_job_fault(job, "cancel_job"))
    message = backend.jobs.cancel(tenant, request.match_info["job_id"])
    return json_response({"status": True, "message": message})


def job_body(backend: Backend, job: ExportJob) -> bytes:
    """`job_json` as compact JSON bytes, encoded once per displayed state and reused by GET and list.

    What a job shows changes only with a transition: its status, errors, timings and gateway ids derive
    from them, and counters appear with SUCCEEDED, itself a transition. So the bytes are keyed on the
    transitions tuple (held, so its identity cannot be reused); a poll that moves nothing reuses them.
    """
    transitions = job.progress.transitions
    cached = job.wire
    if cached is None or cached[0] is not transitions:
        cached = job.wire = (transitions, _dumps(job_json(job, backend.job_counters(job))))
    return cached[1]


# What json_response writes (json.dumps with these separators), without building an encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _dumps(body: Any) -> bytes:
    return _ENCODER.encode(body).encode()
