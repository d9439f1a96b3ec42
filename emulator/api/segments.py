"""The Segmentation Service's audience leg: /data/core/ups/segment/definitions and /segment/jobs."""

from __future__ import annotations

from aiohttp import web

from emulator.api.common import backend_of, client_request_id, json_response, read_json
from emulator.api.export_jobs import SCENARIO_HEADER, scenario_choice_headers
from emulator.backend import Backend
from emulator.gateway import tenant_of
from emulator.segment_job_view import segment_job_json
from emulator.segment_jobs import SegmentJob
from emulator.segments import definition_json, next_link

UPS = "/data/core/ups"
DEFINITIONS = f"{UPS}/segment/definitions"
SEGMENT_JOBS = f"{UPS}/segment/jobs"
MULTI_STATUS = 207


# -- segment definitions ---------------------------------------------------------------------------


async def create_definition(request: web.Request) -> web.Response:
    body = await read_json(request, "segment-definition.create.request")
    definition = backend_of(request).definitions.create(tenant_of(request), body)
    return json_response(
        definition_json(definition), headers={"X-Location": f"{DEFINITIONS}/{definition.id}"}
    )


async def list_definitions(request: web.Request) -> web.Response:
    page = backend_of(request).definitions.list(tenant_of(request), request.query)
    field, descending = page.sort[0]
    link = next_link(page)
    return json_response(
        {
            "segments": [definition_json(d) for d in page.definitions],
            "page": {
                "totalCount": page.total,
                "totalPages": -(-page.total // page.limit),
                "sortField": field,
                "sort": "desc" if descending else "asc",
                "pageSize": len(page.definitions),
                "limit": page.limit,
            },
            "link": {"next": link} if link else {},
        }
    )


async def get_definition(request: web.Request) -> web.Response:
    definition = backend_of(request).definitions.get(tenant_of(request), request.match_info["segment_id"])
    return json_response(definition_json(definition))


async def patch_definition(request: web.Request) -> web.Response:
    body = await read_json(request, "segment-definition.patch.request")
    segment_id = request.match_info["segment_id"]
    definition = backend_of(request).definitions.patch(tenant_of(request), segment_id, body)
    return json_response(
        definition_json(definition), headers={"X-Location": f"{DEFINITIONS}/{definition.id}"}
    )


async def delete_definition(request: web.Request) -> web.Response:
    segment_id = request.match_info["segment_id"]
    backend_of(request).definitions.delete(tenant_of(request), segment_id)
    return json_response({"status": True, "message": f"Segment definition '{segment_id}' has been deleted"})


async def bulk_get_definitions(request: web.Request) -> web.Response:
    body = await read_json(request, "bulk-get.request")
    found = backend_of(request).definitions.bulk_get(tenant_of(request), body)
    return json_response({"results": {d.id: definition_json(d) for d in found}}, status=MULTI_STATUS)


# -- segment jobs ------------------------------------------------------------------------------------


async def create_segment_job(request: web.Request) -> web.Response:
    backend = backend_of(request)
    body = await read_json(request, "segment-job.create.request")
    requested = request.headers.get(SCENARIO_HEADER)
    created = backend.segment_jobs.create(
        tenant_of(request),
        body,
        requested_scenario=requested,
        request_id=client_request_id(request),
        profile_instance_id=request.headers.get("x-profile-instance-id"),
    )
    applied = scenario_choice_headers(request, created.choice, requested)
    await backend.faults.apply(created.fault)  # a fault that refuses the request raises here
    job = created.job
    assert job is not None, "only a refusing fault leaves no job, and it has raised"
    headers = {"X-Location": f"{SEGMENT_JOBS}/{job.id}", **applied}
    return json_response(_job(backend, job), headers=headers)


async def list_segment_jobs(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    await backend.faults.apply(backend.segment_jobs.list_fault(tenant))
    if "property" in request.query:  # the filter reads each job's wire form, counts included
        await backend.prepare_segment_counts(backend.segment_jobs.all_jobs(tenant))
    page = backend.segment_jobs.list(tenant, request.query, lambda job: _job(backend, job))
    await backend.prepare_segment_counts(page.jobs)
    following = page.skip + page.limit
    link = {}
    if following < page.total:
        link = {"href": f"/segment/jobs?start={following}&limit={page.limit}"}
    return json_response(
        {
            "_page": {"totalCount": page.total, "pageSize": len(page.jobs)},
            "children": [_job(backend, job) for job in page.jobs],
            "_links": {"next": link},
        }
    )


async def get_segment_job(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    job_id = request.match_info["job_id"]
    job = backend.segment_jobs.get(tenant, job_id)
    fault = backend.segment_jobs.job_fault(job, "get_job")
    if fault is not None:
        await backend.faults.apply(fault)
        job = backend.segment_jobs.get(tenant, job_id)  # a delay lets other requests run: one may delete it
    backend.segment_jobs.poll(job)
    await backend.prepare_segment_counts((job,))  # counted off the event loop
    return json_response(_job(backend, job))


async def delete_segment_job(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    job_id = request.match_info["job_id"]
    job = backend.segment_jobs.get(tenant, job_id)
    await backend.faults.apply(backend.segment_jobs.job_fault(job, "cancel_job"))
    cancelling = backend.segment_jobs.cancel(tenant, job_id)
    what = "marked for cancelling" if cancelling else "deleted"
    return json_response({"status": True, "message": f"Segment job with id '{job_id}' has been {what}"})


async def bulk_get_segment_jobs(request: web.Request) -> web.Response:
    backend = backend_of(request)
    body = await read_json(request, "bulk-get.request")
    found = backend.segment_jobs.bulk_get(tenant_of(request), body)
    await backend.prepare_segment_counts(found)
    return json_response({"results": {job.id: _job(backend, job) for job in found}}, status=MULTI_STATUS)


def _job(backend: Backend, job: SegmentJob) -> dict[str, object]:
    return segment_job_json(job, backend.segment_job_counts(job))
