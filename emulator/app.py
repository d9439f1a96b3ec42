"""create_app(options): the middlewares and the one route table."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from itertools import chain
from time import perf_counter
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from emulator import logs
from emulator.api import (
    catalog,
    control,
    data_access,
    export_jobs,
    ims,
    merge_policies,
    nearmiss,
    segments,
    ui,
)
from emulator.api.common import (
    BACKEND,
    CONCERN,
    JOURNAL_NOTE,
    ROUTE_GROUP,
    Concern,
    Route,
    RouteGroup,
    backend_of,
    body_of,
    client_request_id,
)
from emulator.api.nearmiss import HINT_HEADER
from emulator.backend import Backend
from emulator.errors import (
    ApiError,
    Envelope,
    GatewayError,
    HeaderFieldsTooLarge,
    InjectedFault,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UriTooLong,
    render_error,
)
from emulator.faults import DropConnection
from emulator.gateway import admission
from emulator.hints import SANDBOX_HEADER, NearMiss
from emulator.journal import MAX_RESPONSE_BYTES, JournalEntry
from emulator.options import CONTROL_PREFIX, Options
from emulator.persistence import Saver, write_atomic

log = logging.getLogger("emulator")
STATE_SAVER = web.AppKey("state_saver", Saver)

# Our limits on the request line and headers, answered with a JSON 414 or 431. aiohttp's own parser limits
# (PARSER_LIMIT_BYTES) sit above them: past those aiohttp refuses the request itself, in plain text.
MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 8 * 1024  # one header line: name and value
MAX_HEADERS_BYTES = 64 * 1024  # all header lines together
PARSER_LIMIT_BYTES = 32 * 1024
MAX_LINGERING_SECONDS = 10.0
_TEXTUAL = ("json", "text/plain", "text/html")  # response types whose bodies the journal keeps

CATALOG = catalog.PREFIX
JOBS = export_jobs.PREFIX
DEFINITIONS = segments.DEFINITIONS
SEGMENT_JOBS = segments.SEGMENT_JOBS
MERGE_POLICIES = merge_policies.PREFIX
DATA_ACCESS = data_access.PREFIX
CONTROL = CONTROL_PREFIX

# The one route table, grouped by service: a group says how its errors look and whether AEP's gateway
# checks its requests. A path no route matches falls in the first group whose prefix it starts with.
ROUTE_GROUPS: tuple[RouteGroup, ...] = (
    RouteGroup(
        "/ims/",
        Envelope.OAUTH,
        gateway=False,
        routes=(
            ("POST", "/ims/token/v3", ims.token),
            ("POST", "/ims/token/v2", ims.token),  # Adobe's IMS Postman collection mints tokens here
        ),
    ),
    RouteGroup(
        f"{CATALOG}/",
        Envelope.PROBLEM,
        gateway=True,
        routes=(
            ("POST", f"{CATALOG}/dataSets", catalog.create_dataset),
            ("GET", f"{CATALOG}/dataSets", catalog.list_datasets),
            ("GET", f"{CATALOG}/dataSets/{{dataset_id}}", catalog.get_datasets),
            ("GET", f"{CATALOG}/batches", catalog.list_batches),
            ("GET", f"{CATALOG}/batches/", catalog.list_batches),  # as the Data Access tutorial prints it
            ("GET", f"{CATALOG}/batches/{{batch_id}}", catalog.get_batches),
        ),
    ),
    RouteGroup(
        "/data/core/ups/",
        Envelope.UPS,
        gateway=True,
        routes=(
            ("POST", JOBS, export_jobs.create_job),
            ("GET", JOBS, export_jobs.list_jobs),
            ("GET", f"{JOBS}/", export_jobs.list_jobs),  # aepp's Profile module lists with a trailing slash
            ("GET", f"{JOBS}/{{job_id}}", export_jobs.get_job),
            ("DELETE", f"{JOBS}/{{job_id}}", export_jobs.delete_job),
            ("POST", DEFINITIONS, segments.create_definition),
            ("GET", DEFINITIONS, segments.list_definitions),
            ("POST", f"{DEFINITIONS}/bulk-get", segments.bulk_get_definitions),
            ("GET", f"{DEFINITIONS}/{{segment_id}}", segments.get_definition),
            ("PATCH", f"{DEFINITIONS}/{{segment_id}}", segments.patch_definition),
            ("DELETE", f"{DEFINITIONS}/{{segment_id}}", segments.delete_definition),
            ("POST", SEGMENT_JOBS, segments.create_segment_job),
            ("GET", SEGMENT_JOBS, segments.list_segment_jobs),
            ("POST", f"{SEGMENT_JOBS}/bulk-get", segments.bulk_get_segment_jobs),
            ("GET", f"{SEGMENT_JOBS}/{{job_id}}", segments.get_segment_job),
            ("DELETE", f"{SEGMENT_JOBS}/{{job_id}}", segments.delete_segment_job),
            ("GET", MERGE_POLICIES, merge_policies.list_policies),
            ("POST", MERGE_POLICIES, merge_policies.create_policy),
            ("POST", f"{MERGE_POLICIES}/bulk-get", merge_policies.bulk_get_policies),
            ("GET", f"{MERGE_POLICIES}/{{policy_id}}", merge_policies.get_policy),
            ("PATCH", f"{MERGE_POLICIES}/{{policy_id}}", merge_policies.patch_policy),
            ("DELETE", f"{MERGE_POLICIES}/{{policy_id}}", merge_policies.delete_policy),
        ),
    ),
    RouteGroup(
        f"{DATA_ACCESS}/",
        Envelope.PROBLEM,
        gateway=True,
        routes=(
            ("GET", f"{DATA_ACCESS}/batches/{{batch_id}}/files", data_access.list_batch_files),
            ("GET", f"{DATA_ACCESS}/files/{{file_id}}", data_access.get_file),
            ("HEAD", f"{DATA_ACCESS}/files/{{file_id}}", data_access.get_file),  # GET routes omit HEAD
        ),
    ),
    RouteGroup("/data/", Envelope.PROBLEM, gateway=True),  # AEP services we do not serve: still gated
    RouteGroup(
        f"{CONTROL}/",
        Envelope.PROBLEM,
        gateway=False,
        aep=False,  # not journaled, always validated strictly
        routes=(
            ("GET", f"{CONTROL}/health", control.health),
            ("POST", f"{CONTROL}/reset", control.reset),
            ("GET", f"{CONTROL}/clock", control.get_clock),
            ("POST", f"{CONTROL}/clock/advance", control.advance_clock),
            ("GET", f"{CONTROL}/scenarios", control.list_scenarios),
            ("POST", f"{CONTROL}/scenarios", control.add_scenario),
            ("PUT", f"{CONTROL}/scenarios/default", control.set_default_scenario),
            ("POST", f"{CONTROL}/scenarios/next", control.queue_next_scenario),
            ("GET", f"{CONTROL}/jobs", control.list_jobs),
            ("POST", f"{CONTROL}/jobs/{{job_id}}/force", control.force_job),
            ("GET", f"{CONTROL}/segments", control.list_segments),
            ("GET", f"{CONTROL}/requests", control.list_requests),
            ("GET", f"{CONTROL}/requests.har", control.requests_har),
            ("DELETE", f"{CONTROL}/requests", control.clear_requests),
            ("GET", f"{CONTROL}/openapi.json", control.openapi_document),
            # The dashboard (emulator/api/ui.py): pages, assets, form actions, the live feed.
            ("GET", f"{CONTROL}/ui", ui.tenants),
            ("GET", f"{CONTROL}/ui/jobs", ui.tenant_jobs),
            ("GET", f"{CONTROL}/ui/jobs/{{job_id}}", ui.job),
            ("GET", f"{CONTROL}/ui/files/{{file_id}}", ui.file_preview),
            ("GET", f"{CONTROL}/ui/files/{{file_id}}/download", ui.file_download),
            ("GET", f"{CONTROL}/ui/requests", ui.requests),
            ("GET", f"{CONTROL}/ui/requests.har", ui.requests_har),
            ("GET", f"{CONTROL}/ui/scenarios", ui.scenarios),
            ("GET", f"{CONTROL}/ui/static/{{name}}", ui.static),
            ("GET", f"{CONTROL}/ui/events", ui.events),
            ("POST", f"{CONTROL}/ui/clock/advance", ui.advance_clock),
            ("POST", f"{CONTROL}/ui/reset", ui.reset),
            ("POST", f"{CONTROL}/ui/scenarios/default", ui.set_default_scenario),
            ("POST", f"{CONTROL}/ui/scenarios/next", ui.queue_next_scenario),
        ),
    ),
    RouteGroup("/", Envelope.PROBLEM, gateway=False),  # anything else: a 404 in the problem shape
)
ROUTES: tuple[Route, ...] = tuple(route for group in ROUTE_GROUPS for route in group.routes)
_PATHS = {path for _, path, _ in ROUTES}
_LAST_VARIABLE = re.compile(r"^(.*)/{([a-z_]+)}$")


def _registered(path: str) -> str:
    """The path as the router gets it: an id variable beside a literal `.../bulk-get` route never matches
    `bulk-get` (so GET .../bulk-get is a 405, as for any other method the literal route lacks)."""
    match = _LAST_VARIABLE.match(path)
    if match is None or f"{match.group(1)}/bulk-get" not in _PATHS:
        return path
    return f"{match.group(1)}/{{{match.group(2)}:(?!bulk-get$)[^{{}}/]+}}"


def group_of_path(path: str) -> RouteGroup:
    return next(group for group in ROUTE_GROUPS if path.startswith(group.prefix) or path == group.prefix[:-1])


def create_app(options: Options | None = None, backend: Backend | None = None) -> web.Application:
    options = options or Options()
    backend = backend or Backend(options)
    groups: dict[web.AbstractResource, RouteGroup] = {}
    app = web.Application(
        client_max_size=options.max_body_bytes,
        middlewares=[aep_middleware(backend, groups)],
        handler_args={
            "max_line_size": PARSER_LIMIT_BYTES,
            "max_field_size": PARSER_LIMIT_BYTES,
            # Idle connections, and request heads still arriving, are closed after this (aiohttp: an hour).
            "keepalive_timeout": options.keepalive_timeout,
            # After an answer, the unread rest of a body is read and dropped for this long (aiohttp: 10 s),
            # then the connection is closed: a body that stalls is not waited for twice.
            "lingering_time": min(MAX_LINGERING_SECONDS, options.body_timeout),
            # Bodies are decoded by emulator/api/bodies.py, bounded by --max-body-bytes as they inflate.
            "auto_decompress": False,
        },
    )
    app[BACKEND] = backend
    app.on_shutdown.append(lambda _: _close_feeds(backend))  # live feeds end, so shutdown need not wait
    if options.state_file is not None:
        lock = backend.state_lock  # the backend loaded the file the lock names (symbolic links followed)
        state_path = lock.path if lock is not None else options.state_file
        saver = app[STATE_SAVER] = Saver(backend, state_path, lock)
        app.cleanup_ctx.append(_saving(saver, options.save_interval))
    for group in ROUTE_GROUPS:
        for method, path, handler in group.routes:
            route = app.router.add_route(method, _registered(path), handler)
            groups[route.resource] = group  # type: ignore[index]
    return app


async def _close_feeds(backend: Backend) -> None:
    backend.events.close()


def aep_middleware(backend: Backend, groups: dict[web.AbstractResource, RouteGroup]) -> Middleware:
    """Everything around a handler, in one middleware (each one is a coroutine more on every request): the
    gateway's rules where they apply, any exception rendered as an error (with a near-miss hint when the
    request missed), then the journal entry and the request's log line."""
    admit = admission(backend)
    journal = backend.journal
    clock = backend.clock
    routes = tuple((method, path) for method, path, _ in ROUTES)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = perf_counter()
        resource = request.match_info.route.resource
        group = groups.get(resource) if resource is not None else None
        if group is None:
            group = group_of_path(request.path)
        request[ROUTE_GROUP] = group
        epoch = journal.epoch  # a request started before a reset never enters the next journal
        tenant = None
        dropped = False
        fault = None
        miss = None
        try:
            _check_sizes(request)
            if group.gateway:
                tenant = admit(request)
            response = await handler(request)
        except DropConnection:
            dropped = True
            fault = "drop"
            if request.transport is not None:
                request.transport.close()
            response = web.Response(status=204)
        except Exception as exc:
            response = error_response(request, exc, group.envelope)
            if isinstance(exc, InjectedFault):
                fault = f"respond {exc.status}"
            else:
                miss = _near_miss(nearmiss.refused, request, exc, backend, routes)
        else:
            # Served; but a query parameter nobody reads, or a misspelt sandbox header, is a near miss too.
            if request.query_string or (group.gateway and SANDBOX_HEADER not in request.headers):
                miss = _near_miss(nearmiss.served, request)
        if miss is not None and not response.prepared:
            response.headers[HINT_HEADER] = miss.hint
        duration_ms = (perf_counter() - started) * 1000
        concern = request.get(CONCERN)
        if not group.aep:  # the control plane is never journaled
            if miss is not None or logs.wanted(False):
                _log(request, response, duration_ms, None, concern, fault, miss)
            return response
        headers = request.headers
        status = response.status
        kept, size = _response_body(response)
        entry = JournalEntry(
            method=request.method,
            path=request.path,
            query=request.query,  # read-only views, copied only when the journal is read
            headers=headers,
            body=await _body_text(request) if request.body_exists else "",
            status=status,
            org=tenant.org if tenant else headers.get("x-gw-ims-org-id"),
            sandbox=tenant.sandbox if tenant else headers.get("x-sandbox-name"),
            time=clock.now_ms(),
            dropped=dropped,
            note=request.get(JOURNAL_NOTE),
            request_id=response.headers.get("x-request-id") or client_request_id(request),
            response_body=kept,
            response_type=response.content_type,
            response_size=size,
            duration_ms=duration_ms,
            job=concern.job if concern else request.match_info.get("job_id"),
            scenario=concern.scenario if concern else None,
            fault=fault,
            hint=miss.hint if miss else None,
            near_miss=miss.to_json() if miss else None,
            response_headers=response.headers,
            version=request.version,
        )
        journal.record(entry, epoch)
        if miss is not None or logs.wanted(False):
            _log(request, response, duration_ms, entry, concern, fault, miss)
        return response

    return middleware


def _near_miss(diagnose: Callable[..., NearMiss | None], *args: Any) -> NearMiss | None:
    """A near-miss report; never an error of its own (the request's answer stands without a hint)."""
    try:
        return diagnose(*args)
    except Exception:
        log.exception("could not explain a near miss")
        return None


def _log(
    request: web.Request,
    response: web.StreamResponse,
    duration_ms: float,
    entry: JournalEntry | None,
    concern: Concern | None,
    fault: str | None,
    miss: NearMiss | None,
) -> None:
    """The request's one log line (WARNING for a near miss, INFO otherwise)."""
    if not logs.wanted(miss is not None):
        return
    headers = request.headers
    logs.log_request(
        {
            "requestId": entry.request_id
            if entry
            else response.headers.get("x-request-id") or headers.get("x-request-id"),
            "org": entry.org if entry else headers.get("x-gw-ims-org-id"),
            "sandbox": entry.sandbox if entry else headers.get("x-sandbox-name"),
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "durationMs": round(duration_ms, 3),
            "job": entry.job if entry else concern.job if concern else None,
            "scenario": concern.scenario if concern else None,
            "fault": fault,
            "hint": miss.hint if miss else None,
        },
        near_miss=miss is not None,
    )


def error_response(request: web.Request, exc: Exception, envelope: Envelope) -> web.Response:
    """The one place an exception becomes an HTTP error, in the envelope of the request's route group."""
    error: ApiError | GatewayError
    if isinstance(exc, ApiError | GatewayError):
        error = exc
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = backend_of(request).options.max_body_bytes
        error = PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes")
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        error = MethodNotAllowed(request.method, sorted(exc.allowed_methods))
    elif isinstance(exc, web.HTTPNotFound):
        error = NotFound(f"No resource at {request.path}")
    elif isinstance(exc, web.HTTPException):
        error = ApiError(exc.reason)
        error.status, error.title = exc.status, exc.reason.replace(" ", "") + "Error"
    else:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        error = ApiError("The emulator hit an unexpected error; see its log")
    request_id = client_request_id(request) or str(uuid.uuid4())
    status, body = render_error(error, envelope, request_id)
    headers = {**error.headers, "x-request-id": request_id}
    return web.Response(status=status, body=body, headers=headers, content_type="application/json")


def _response_body(response: web.StreamResponse) -> tuple[bytes, int]:
    """What the journal keeps of a response body (JSON or text, up to MAX_RESPONSE_BYTES; no copy below it),
    and the body's length."""
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes):
        return b"", response.content_length or 0
    if not response.content_type.endswith(_TEXTUAL):
        return b"", len(body)
    return (body if len(body) <= MAX_RESPONSE_BYTES else body[:MAX_RESPONSE_BYTES]), len(body)


async def _body_text(request: web.Request) -> str:
    try:
        return (await body_of(request)).decode("utf-8", errors="replace")
    except ApiError:  # too large, too slow, or badly encoded: the entry's status says which
        return ""


def _check_sizes(request: web.Request) -> None:
    if len(request.raw_path) > MAX_URL_BYTES:
        raise UriTooLong(
            f"The request target is {len(request.raw_path)} bytes long; the limit is {MAX_URL_BYTES} bytes"
        )
    raw_headers = request.raw_headers
    total = sum(map(len, chain.from_iterable(raw_headers)))
    if total <= MAX_HEADER_BYTES:  # every request but an oversized one: no header alone can be too long
        return
    for name, value in raw_headers:
        size = len(name) + len(value)
        if size > MAX_HEADER_BYTES:
            raise HeaderFieldsTooLarge(
                f"Header '{name[:64].decode('latin-1')}' is {size} bytes long; "
                f"the limit is {MAX_HEADER_BYTES} bytes per header"
            )
    if total > MAX_HEADERS_BYTES:
        raise HeaderFieldsTooLarge(
            f"The headers are {total} bytes long together; the limit is {MAX_HEADERS_BYTES} bytes"
        )


def _saving(saver: Saver, interval: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """The app's one background task: save the state every `interval` seconds, and once more at shutdown,
    after the requests in flight have finished. It reads the state; it never changes a job."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        saver.clean_stale()
        stop = asyncio.Event()
        task = asyncio.create_task(_save_every(saver, interval, stop))
        yield
        stop.set()
        try:
            await task  # lets a write in progress finish: two writers never race to rename
        finally:
            await _save(saver)
            saver.close()

    return context


async def _save_every(saver: Saver, interval: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            await _save(saver)


async def _save(saver: Saver) -> None:
    """One save; never raises (a failure is logged, and the next save tries again). What reads live state
    (the state, its encoding, the summary for the log) runs here on the loop, in one step with no await in
    between; the worker thread gets only a path and bytes, so requests can change the state meanwhile."""
    try:
        save = saver.prepare()
        if save is None:
            return
        await asyncio.to_thread(write_atomic, save.path, save.data)
    except Exception as exc:
        saver.not_written(exc)
    else:
        saver.written(save)
