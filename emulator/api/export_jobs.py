"""Export jobs: /data/core/ups/export/jobs (create, list, get = poll, delete = cancel or delete)."""

from __future__ import annotations

from aiohttp import web

from emulator.api.common import apply_fault, backend_of, json_response, read_json
from emulator.gateway import CLIENT_ID, tenant_of
from emulator.jobs import (
    check_timestamps,
    job_json,
    next_link,
    normalize_request,
    parse_list_query,
    take_fault,
)

PREFIX = "/data/core/ups/export/jobs"
SCENARIO_HEADER = "x-emulator-scenario"


async def create_job(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    body = await read_json(request, "export-job.create.request")
    check_timestamps(body)
    header = request.headers.get(SCENARIO_HEADER)
    fault = take_fault(
        None,
        backend.store.tenant(tenant),
        backend.scenarios.peek(header, normalize_request(body)),
        "create_job",
    )
    # A refused request creates nothing. Otherwise the job is created before any awaited delay, in the
    # same step as the peek above, so the job gets the scenario whose fault it suffered.
    if fault is not None and fault.refuses:
        await apply_fault(fault)
    job = backend.jobs.create(
        tenant,
        body,
        scenario_header=header,
        request_id=request.headers.get("x-request-id"),
        profile_instance_id=request.headers.get("x-profile-instance-id"),
        client_id=request[CLIENT_ID],
    )
    await apply_fault(fault)
    return json_response(job_json(job), headers={"X-Location": f"{PREFIX}/{job.id}"})


async def list_jobs(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    query = parse_list_query(request.query)
    default = backend.scenarios.get(backend.scenarios.default)
    await apply_fault(take_fault(None, backend.store.tenant(tenant), default, "list_jobs"))
    page = backend.jobs.list(tenant, query)
    return json_response(
        {
            "records": [job_json(job, backend.job_counters(job)) for job in page.records],
            "page": {
                "sortField": query.sort_field,
                "sort": "desc" if query.descending else "asc",
                "pageOffset": page.page_offset,
                "pageSize": len(page.records),
            },
            "link": {"next": next_link(page)},
        }
    )


async def get_job(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    job = backend.jobs.get(tenant, request.match_info["job_id"])
    await apply_fault(take_fault(job, backend.store.tenant(tenant), job.scenario, "get_job"))
    job = backend.jobs.poll(tenant, request.match_info["job_id"])
    return json_response(job_json(job, backend.job_counters(job)))


async def delete_job(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    job = backend.jobs.get(tenant, request.match_info["job_id"])
    await apply_fault(take_fault(job, backend.store.tenant(tenant), job.scenario, "cancel_job"))
    message = backend.jobs.cancel(tenant, request.match_info["job_id"])
    return json_response({"status": True, "message": message})
