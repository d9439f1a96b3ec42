"""The control plane, /_emulator/*: time, scenarios, jobs, the journal. No AEP auth, never journaled."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from aiohttp import web

from emulator import __version__, har, journal, openapi
from emulator.api.common import JSON, Call, body_of, json_response, read_json
from emulator.backend import Backend
from emulator.errors import BadRequest, PayloadTooLarge
from emulator.job_view import job_json
from emulator.jsonio import dumps
from emulator.lifecycle import JobError
from emulator.options import DEFAULT_SANDBOX
from emulator.params import int_param
from emulator.scenarios import MAX_DOCUMENT_BYTES, SEGMENT, ScenarioError, parse_text
from emulator.segment_job_view import segment_job_json
from emulator.segment_jobs import SegmentJob
from emulator.segments import membership_json
from emulator.store import ExportJob, Tenant

PREFIX = "/_emulator"
MAX_SCENARIO_BYTES = MAX_DOCUMENT_BYTES
# Reading a scenario of MAX_SCENARIO_BYTES takes up to about 2 s of CPU (YAML, schema, checks): it happens in
# this one thread, so the event loop keeps answering meanwhile, and uploads wait for each other.
_PARSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aep-emulator-scenario")


async def health(call: Call) -> web.Response:
    return json_response({"status": "ok", "version": __version__})


async def reset(call: Call) -> web.Response:
    backend = call.backend
    tenant = _tenant(call.query, required=False)
    backend.reset(tenant)
    scope: Any = "all" if tenant is None else {"org": tenant.org, "sandbox": tenant.sandbox}
    return json_response({"reset": scope})


async def get_clock(call: Call) -> web.Response:
    return json_response(_clock(call.backend))


async def advance_clock(call: Call) -> web.Response:
    backend = call.backend
    body = await read_json(call, "control.clock-advance.request")
    try:
        backend.clock.advance(body["seconds"])
    except ValueError as exc:  # NaN gets past JSON Schema's bounds
        raise BadRequest(f"Invalid request body: $.seconds: {exc}") from None
    return json_response(_clock(backend))


async def list_scenarios(call: Call) -> web.Response:
    registry = call.backend.scenarios
    return json_response(
        {
            "default": registry.default,
            "segmentDefault": registry.defaults[SEGMENT],
            "scenarios": [s.summary() for s in registry.scenarios.values()],
            "queued": registry.queued,
        }
    )


async def add_scenario(call: Call) -> web.Response:
    raw = await body_of(call)
    if len(raw) > MAX_SCENARIO_BYTES:
        raise PayloadTooLarge(f"A scenario document may be at most {MAX_SCENARIO_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("Scenario document is not valid UTF-8") from None
    registry = call.backend.scenarios
    generation = registry.generation
    try:
        scenario = await asyncio.get_running_loop().run_in_executor(
            _PARSER, partial(parse_text, text, source="upload")
        )
    except ScenarioError as exc:
        raise BadRequest(f"Invalid scenario: {exc}") from None
    registry.add(scenario, generation=generation)
    return json_response(scenario.summary(), status=201)


async def set_default_scenario(call: Call) -> web.Response:
    registry = call.backend.scenarios
    body = await read_json(call, "control.scenario-default.request")
    registry.set_default(body["name"])
    kind = registry.get(body["name"]).kind
    return json_response({"default": registry.defaults[kind], "kind": kind})


async def queue_next_scenario(call: Call) -> web.Response:
    registry = call.backend.scenarios
    body = await read_json(call, "control.scenario-next.request")
    registry.queue_next(body["name"], body.get("count", 1))
    return json_response({"queued": registry.queued})


async def list_jobs(call: Call) -> web.Response:
    backend = call.backend
    flag = call.query.get("all", "false")
    if flag not in ("true", "false"):
        raise BadRequest(f"Query parameter 'all' must be true or false, got '{flag}'")
    every = flag == "true"
    # Checked with all=true too: an empty `org` is a mistake to report, not a filter to ignore.
    tenant = _tenant(call.query, required=not every)
    if every:
        jobs = list(backend.jobs.all_jobs())
    else:
        assert tenant is not None
        state = backend.store.tenants.get(tenant)
        jobs = list(state.jobs.values()) if state else []
        for job in jobs:
            backend.jobs.refresh(job)
    await backend.prepare_counters(jobs)  # counted off the event loop
    segment_jobs = list(backend.segment_jobs.all_jobs(None if every else tenant))
    await backend.prepare_segment_counts(segment_jobs)
    summaries = [_job_summary(backend, job) for job in jobs]
    summaries += [_segment_job_summary(backend, job) for job in segment_jobs]
    return json_response({"jobs": summaries})


async def force_job(call: Call) -> web.Response:
    """Export jobs have numeric ids, segment jobs UUIDs: the id says which kind of job to force."""
    backend = call.backend
    body = await read_json(call, "control.force-job.request")
    job_id = call.params["job_id"]
    errors = tuple(JobError(e["code"], e["msg"], e.get("callStack", "")) for e in body.get("errors", []))
    segment_job = None if job_id.isdigit() else backend.segment_jobs.find(job_id)
    if segment_job is not None:
        backend.segment_jobs.force(segment_job, body["status"], errors)
        await backend.prepare_segment_counts((segment_job,))  # counted off the event loop
        return json_response(_segment_job_summary(backend, segment_job))
    job = backend.jobs.find(job_id)
    if body["status"] not in ("NEW", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELLED"):
        raise BadRequest(f"Invalid request body: $.status: {body['status']} is a segment-job status")
    backend.jobs.force(job, body["status"], errors)
    await backend.prepare_counters((job,))  # counted off the event loop
    return json_response(_job_summary(backend, job))


async def list_segments(call: Call) -> web.Response:
    """Every segment definition (of one tenant, or all=true) and how its members are decided: `pql` (its
    expression is evaluated) or `hash` (outside the evaluated subset; `reason` says why)."""
    backend = call.backend
    flag = call.query.get("all", "false")
    if flag not in ("true", "false"):
        raise BadRequest(f"Query parameter 'all' must be true or false, got '{flag}'")
    tenant = _tenant(call.query, required=flag != "true")
    definitions = backend.definitions.all() if tenant is None else backend.definitions.of_tenant(tenant)
    return json_response({"definitions": [membership_json(d) for d in definitions]})


async def list_requests(call: Call) -> web.Response:
    """One page of the journal, filtered (see `journal.Journal.entries`): `start` (0) and `limit`
    (journal.PAGE_DEFAULT, at most PAGE_MAX)."""
    start, limit = _journal_query(call.query)
    try:
        encoded, page = call.backend.journal.encoded_page(call.query, start, limit)
    except journal.FilterError as exc:
        raise BadRequest(str(exc)) from None
    about = {
        "start": start,
        "limit": limit,
        "count": page.matching,
        "next": page.next,
        "truncated": len(encoded) < limit and page.next is not None,
    }
    body = b'{"requests":[' + b",".join(encoded) + b'],"page":' + dumps(about) + b"}"
    return web.Response(body=body, content_type=JSON)


async def requests_har(call: Call) -> web.Response:
    """The same page of the journal as HAR 1.2 (see emulator/har.py); `limit` defaults to PAGE_MAX."""
    start, limit = _journal_query(call.query, default_limit=journal.PAGE_MAX)
    try:
        page = call.backend.journal.page(call.query, start, limit)
    except journal.FilterError as exc:
        raise BadRequest(str(exc)) from None
    comment = f"journal entries {start} to {start + len(page.entries)} of {page.matching} matching" + (
        f"; the next page starts at start={page.next}" if page.next is not None else ""
    )
    document = har.document(page.entries, f"{call.request.scheme}://{call.request.host}", comment)
    return web.Response(body=dumps(document), content_type=JSON)


def _journal_query(query: Any, default_limit: int = journal.PAGE_DEFAULT) -> tuple[int, int]:
    """`start` and `limit`, checked; and no parameter the journal does not know (a typo would widen the
    filter to everything)."""
    unknown = sorted(set(query) - {*journal.FILTERS, "start", "limit"})
    if unknown:
        raise BadRequest(
            f"Unknown query parameter '{unknown[0]}'; the journal takes {', '.join(journal.FILTERS)}, "
            "start and limit"
        )
    for name in ("start", "limit"):
        if query.get(name) == "":
            raise BadRequest(f"Query parameter '{name}' must be an integer, got ''")
    start = int_param(query, "start", 0)
    if start > journal.MAX_START:  # past any journal's end; and JSON-safe when echoed in `page`
        raise BadRequest(f"Query parameter 'start' must be at most {journal.MAX_START}, got {start}")
    limit = int_param(query, "limit", default_limit, minimum=1)
    if limit > journal.PAGE_MAX:
        raise BadRequest(f"Query parameter 'limit' must be at most {journal.PAGE_MAX}, got {limit}")
    return start, limit


async def clear_requests(call: Call) -> web.Response:
    call.backend.journal.clear()
    return json_response({"cleared": True})


async def openapi_document(call: Call) -> web.Response:
    """Built from the app's own route table, so it documents exactly what this app serves."""
    return web.Response(body=openapi.document_bytes(call.routes), content_type=JSON)


def _clock(backend: Backend) -> dict[str, Any]:
    clock = backend.clock
    return {"mode": clock.mode, "now": clock.now_ms(), "speed": clock.speed}


def _segment_job_summary(backend: Backend, job: SegmentJob) -> dict[str, Any]:
    return {
        "kind": "segment",
        "tenant": {"org": job.tenant.org, "sandbox": job.tenant.sandbox},
        "scenario": job.scenario.name,
        "pollsInStep": job.progress.polls_in_step,
        "job": segment_job_json(job, backend.segment_job_counts(job)),
    }


def _job_summary(backend: Backend, job: ExportJob) -> dict[str, Any]:
    return {
        "kind": "export",
        "tenant": {"org": job.tenant.org, "sandbox": job.tenant.sandbox},
        "scenario": job.scenario.name,
        "pollsInStep": job.progress.polls_in_step,
        "job": job_json(job, backend.job_counters(job)),
    }


def _tenant(query: Any, *, required: bool) -> Tenant | None:
    org = query.get("org")
    if "org" in query and not org:
        # An empty variable in a script must not widen a tenant reset to everything.
        raise BadRequest("Query parameter 'org' must not be empty")
    if not org:
        if required:
            raise BadRequest("Query parameter 'org' is required (with optional 'sandbox'), or all=true")
        if "sandbox" in query:
            raise BadRequest("Query parameter 'sandbox' needs 'org'")
        return None
    return Tenant(org, query.get("sandbox") or DEFAULT_SANDBOX)
