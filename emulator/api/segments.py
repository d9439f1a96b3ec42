"""The Segmentation Service's audience leg: /data/core/ups/segment/definitions and /segment/jobs."""

from __future__ import annotations

from aiohttp import web

from emulator.api.common import Call, client_request_id, json_response, read_json
from emulator.api.export_jobs import SCENARIO_HEADER, scenario_choice_headers
from emulator.backend import Backend
from emulator.segment_job_view import segment_job_json
from emulator.segment_jobs import SegmentJob
from emulator.segments import definition_json, next_link

UPS = "/data/core/ups"
DEFINITIONS = f"{UPS}/segment/definitions"
SEGMENT_JOBS = f"{UPS}/segment/jobs"
MULTI_STATUS = 207


# -- segment definitions ---------------------------------------------------------------------------


async def create_definition(call: Call) -> web.Response:
    body = await read_json(call, "segment-definition.create.request")
    definition = call.backend.definitions.create(call.own_tenant, body)
    return json_response(
        definition_json(definition), headers={"X-Location": f"{DEFINITIONS}/{definition.id}"}
    )


async def list_definitions(call: Call) -> web.Response:
    page = call.backend.definitions.list(call.own_tenant, call.query)
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


async def get_definition(call: Call) -> web.Response:
    definition = call.backend.definitions.get(call.own_tenant, call.params["segment_id"])
    return json_response(definition_json(definition))


async def patch_definition(call: Call) -> web.Response:
    body = await read_json(call, "segment-definition.patch.request")
    segment_id = call.params["segment_id"]
    definition = call.backend.definitions.patch(call.own_tenant, segment_id, body)
    return json_response(
        definition_json(definition), headers={"X-Location": f"{DEFINITIONS}/{definition.id}"}
    )


async def delete_definition(call: Call) -> web.Response:
    segment_id = call.params["segment_id"]
    call.backend.definitions.delete(call.own_tenant, segment_id)
    return json_response({"status": True, "message": f"Segment definition '{segment_id}' has been deleted"})


async def bulk_get_definitions(call: Call) -> web.Response:
    body = await read_json(call, "bulk-get.request")
    found = call.backend.definitions.bulk_get(call.own_tenant, body)
    return json_response({"results": {d.id: definition_json(d) for d in found}}, status=MULTI_STATUS)


# -- segment jobs ------------------------------------------------------------------------------------


async def create_segment_job(call: Call) -> web.Response:
    backend = call.backend
    body = await read_json(call, "segment-job.create.request")
    requested = call.headers.get(SCENARIO_HEADER)
    created = backend.segment_jobs.create(
        call.own_tenant,
        body,
        requested_scenario=requested,
        request_id=client_request_id(call.request),
        profile_instance_id=call.headers.get("x-profile-instance-id"),
    )
    applied = scenario_choice_headers(call, created.choice, requested)
    await backend.faults.apply(created.fault)  # a fault that refuses the request raises here
    job = created.job
    assert job is not None, "only a refusing fault leaves no job, and it has raised"
    headers = {"X-Location": f"{SEGMENT_JOBS}/{job.id}", **applied}
    return json_response(_job(backend, job), headers=headers)


async def list_segment_jobs(call: Call) -> web.Response:
    backend = call.backend
    tenant = call.own_tenant
    await backend.faults.apply(backend.segment_jobs.list_fault(tenant))
    if "property" in call.query:  # the filter reads each job's wire form, counts included
        await backend.prepare_segment_counts(backend.segment_jobs.all_jobs(tenant))
    page = backend.segment_jobs.list(tenant, call.query, lambda job: _job(backend, job))
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


async def get_segment_job(call: Call) -> web.Response:
    backend = call.backend
    tenant = call.own_tenant
    job_id = call.params["job_id"]
    job = backend.segment_jobs.get(tenant, job_id)
    fault = backend.segment_jobs.job_fault(job, "get_job")
    if fault is not None:
        await backend.faults.apply(fault)
        job = backend.segment_jobs.get(tenant, job_id)  # a delay lets other requests run: one may delete it
    backend.segment_jobs.poll(job)
    await backend.prepare_segment_counts((job,))  # counted off the event loop
    return json_response(_job(backend, job))


async def delete_segment_job(call: Call) -> web.Response:
    backend = call.backend
    tenant = call.own_tenant
    job_id = call.params["job_id"]
    job = backend.segment_jobs.get(tenant, job_id)
    await backend.faults.apply(backend.segment_jobs.job_fault(job, "cancel_job"))
    cancelling = backend.segment_jobs.cancel(tenant, job_id)
    what = "marked for cancelling" if cancelling else "deleted"
    return json_response({"status": True, "message": f"Segment job with id '{job_id}' has been {what}"})


async def bulk_get_segment_jobs(call: Call) -> web.Response:
    backend = call.backend
    body = await read_json(call, "bulk-get.request")
    found = backend.segment_jobs.bulk_get(call.own_tenant, body)
    await backend.prepare_segment_counts(found)
    return json_response({"results": {job.id: _job(backend, job) for job in found}}, status=MULTI_STATUS)


def _job(backend: Backend, job: SegmentJob) -> dict[str, object]:
    return segment_job_json(job, backend.segment_job_counts(job))
