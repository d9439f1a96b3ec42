"""create_app(options): the one route table, and the Application that serves it through the dispatcher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from emulator.api import (
    catalog,
    control,
    data_access,
    export_jobs,
    ims,
    merge_policies,
    segments,
    ui,
)
from emulator.api.common import BACKEND, Route, RouteGroup
from emulator.api.dispatch import PARSER_LIMIT_BYTES, Dispatcher
from emulator.api.routing import RouteTable
from emulator.backend import Backend
from emulator.errors import Envelope
from emulator.options import CONTROL_PREFIX, Options
from emulator.persistence import Saver, write_atomic

log = logging.getLogger("emulator")
STATE_SAVER = web.AppKey("state_saver", Saver)
MAX_LINGERING_SECONDS = 10.0

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
# The app's dispatcher, which `aep-emulator serve` and the fixture serve on aiohttp's low-level server.
DISPATCHER = web.AppKey("dispatcher", Dispatcher)


def create_app(options: Options | None = None, backend: Backend | None = None) -> web.Application:
    """The emulator as an aiohttp Application: its dispatcher behind one catch-all route, its backend as
    `app[BACKEND]`, and its lifecycle (the state file's saves, the live feeds closed at shutdown)."""
    options = options or Options()
    backend = backend or Backend(options)
    dispatcher = Dispatcher(backend, RouteTable(ROUTE_GROUPS))
    app = web.Application(handler_args=server_settings(options))
    app[BACKEND] = backend
    app[DISPATCHER] = dispatcher
    app.on_shutdown.append(lambda _: _close_feeds(backend))  # live feeds end, so shutdown need not wait
    if options.state_file is not None:
        lock = backend.state_lock  # the backend loaded the file the lock names (symbolic links followed)
        state_path = lock.path if lock is not None else options.state_file
        saver = app[STATE_SAVER] = Saver(backend, state_path, lock)
        app.cleanup_ctx.append(_saving(saver, options.save_interval))
    # The dispatcher routes, and answers `Expect: 100-continue` itself once the gateway has let a request in.
    app.router.add_route("*", "/{path:.*}", dispatcher.handle, expect_handler=_expect_nothing)
    return app


def server_settings(options: Options) -> dict[str, Any]:
    """How aiohttp's server reads requests and keeps connections, for the Application and the low-level
    server alike."""
    return {
        "max_line_size": PARSER_LIMIT_BYTES,
        "max_field_size": PARSER_LIMIT_BYTES,
        # Idle connections, and request heads still arriving, are closed after this (aiohttp: an hour).
        "keepalive_timeout": options.keepalive_timeout,
        # After an answer, the unread rest of a body is read and dropped for this long (aiohttp: 10 s),
        # then the connection is closed: a body that stalls is not waited for twice.
        "lingering_time": min(MAX_LINGERING_SECONDS, options.body_timeout),
        # Bodies are decoded by emulator/api/bodies.py, bounded by --max-body-bytes as they inflate.
        "auto_decompress": False,
    }


async def _expect_nothing(request: web.Request) -> None:
    return None


async def _close_feeds(backend: Backend) -> None:
    backend.events.close()


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
