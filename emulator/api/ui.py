"""The dashboard, /_emulator/ui: server-rendered pages, their static assets, a few form actions and the live
feed (Server-Sent Events). Part of the control plane: no AEP auth, never journaled.

Pages are HTML rendered by emulator/ui/render.py (autoescaped: what a request carried is shown as text);
each page's data comes from one call into emulator/ui/views.py. A Content-Security-Policy allows only the
emulator's own script and stylesheet, so even markup that slipped through could run nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from emulator.api.common import Call, body_of, client_request_id, json_response
from emulator.errors import BadRequest, Forbidden, NotFound, TooManyRequests
from emulator.events import CLOCK, TooManyListeners
from emulator.jsonio import dumps
from emulator.ui import har, views
from emulator.ui.render import UI, page, static_asset

HTML = "text/html"
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# What each page listens for on the live feed (see emulator/events.py).
TOPICS = {
    "tenants": "jobs requests clock reset",
    "jobs": "jobs requests clock reset",
    "job": "jobs requests clock reset",
    "file": "reset",
    "requests": "requests reset",
    "scenarios": "scenarios jobs reset",
    "notfound": "reset",
}
# The live feed: at most one notice a second per listener (changes in between are coalesced: a page redrawn
# once a second is live to a person, and costs a busy emulator ~1% of a core),
# a comment line when idle so proxies and browsers keep the stream open, and on a real clock a tick a second.
MIN_NOTICE_INTERVAL_S = 1.0
# ... and while the emulator is busy (this many events or more in the last interval: a load test, not a
# person clicking), one per BUSY_NOTICE_INTERVAL_S: its clients keep their speed with dashboards open.
BUSY_EVENTS = 200
BUSY_NOTICE_INTERVAL_S = 3.0
KEEPALIVE_S = 15.0
REAL_CLOCK_TICK_S = 1.0
MAX_FORM_BYTES = 4096


# -- pages ----------------------------------------------------------------------------------------------


async def tenants(call: Call) -> web.Response:
    return _page(call, "tenants.html", "tenants", rows=views.tenants(call.backend))


async def tenant_jobs(call: Call) -> web.Response:
    tenant = views.tenant_of(call.query.get("org"), call.query.get("sandbox"))
    if tenant is None:
        raise BadRequest("Query parameter 'org' is required (with optional 'sandbox')")
    return _page(call, "jobs.html", "jobs", view_data=views.tenant_jobs(call.backend, tenant))


async def job(call: Call) -> web.Response:
    try:
        shown = await views.job_page(call.backend, call.params["job_id"])
    except NotFound as exc:
        return _not_found(call, exc)
    return _page(call, "job.html", "job", **shown)


async def file_preview(call: Call) -> web.Response:
    try:
        shown = await views.file_page(call.backend, _tenant(call), call.params["file_id"], call.query)
    except NotFound as exc:
        return _not_found(call, exc)
    return _page(call, "file.html", "file", **shown)


async def file_download(call: Call) -> web.Response:
    name, content_type, data = await views.file_bytes(call.backend, _tenant(call), call.params["file_id"])
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"}
    return web.Response(body=data, content_type=content_type, headers=headers)


async def requests(call: Call) -> web.Response:
    return _page(call, "requests.html", "requests", view_data=views.journal(call.backend, call.query))


async def requests_har(call: Call) -> web.Response:
    document = har.document(views.journal(call.backend, call.query).rows)
    headers = {"Content-Disposition": 'attachment; filename="aep-emulator-requests.har"'}
    return web.Response(body=dumps(document), content_type="application/json", headers=headers)


async def scenarios(call: Call) -> web.Response:
    return _page(call, "scenarios.html", "scenarios", view_data=views.scenarios(call.backend))


async def static(call: Call) -> web.Response:
    found = static_asset(call.params["name"])
    if found is None:
        raise NotFound(f"No resource at {call.request.path}")
    data, content_type = found
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return web.Response(body=data, content_type=content_type, headers=headers)


# -- actions: forms that work without script (303 back to the page) and with it (JSON) -----------------


async def advance_clock(call: Call) -> web.Response:
    form = await _form(call)
    amount, unit = _number(form, "amount"), _number(form, "unit", default=1.0)
    seconds = amount * unit
    backend = call.backend
    try:
        now_ms = backend.clock.advance(seconds)
    except ValueError as exc:
        raise BadRequest(f"Cannot advance the clock: {exc}") from None
    return _done(
        call,
        form,
        f"Advanced the clock by {views.span(round(seconds * 1000))} to {views.instant(now_ms)}.",
    )


async def reset(call: Call) -> web.Response:
    form = await _form(call)
    call.backend.reset()
    return _done(call, form, "Reset: the emulator is back to its startup state.")


async def set_default_scenario(call: Call) -> web.Response:
    form = await _form(call)
    name = _text(form, "name")
    call.backend.scenarios.set_default(name)
    return _done(call, form, f"New jobs now follow '{name}' by default.")


async def queue_next_scenario(call: Call) -> web.Response:
    form = await _form(call)
    name, count = _text(form, "name"), _number(form, "count", default=1.0)
    if not (count.is_integer() and 1 <= count <= 10_000):
        raise BadRequest("count must be a whole number from 1 to 10000")
    call.backend.scenarios.queue_next(name, int(count))
    return _done(call, form, f"Queued '{name}' for the next {int(count)} job{'s' if count != 1 else ''}.")


# -- the live feed ----------------------------------------------------------------------------------------


async def events(call: Call) -> web.StreamResponse:
    """Server-Sent Events: `change` events whose data is {"topics": [...], "now": epoch ms}, at most one per
    MIN_NOTICE_INTERVAL_S; nothing is queued for a slow reader (see emulator/events.py)."""
    backend = call.backend
    hub = backend.events
    wake = asyncio.Event()
    try:
        listener = hub.listen(wake.set)
    except TooManyListeners as exc:
        raise TooManyRequests(f"{exc}; close a dashboard tab") from None
    response = web.StreamResponse(headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    response.content_type = "text/event-stream"
    clock = backend.clock
    try:
        await response.prepare(call.request)
        await response.write(b"retry: 2000\n\n" + _notice(["hello"], clock.now_ms()))
        while not listener.closed:
            ticking = clock.mode == "real"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), REAL_CLOCK_TICK_S if ticking else KEEPALIVE_S)
            wake.clear()
            if listener.closed:
                break
            topics = listener.take()
            if ticking:
                topics.add(CLOCK)
            await response.write(_notice(sorted(topics), clock.now_ms()) if topics else b": idle\n\n")
            published = hub.published
            await asyncio.sleep(MIN_NOTICE_INTERVAL_S)
            if hub.published - published >= BUSY_EVENTS:
                await asyncio.sleep(BUSY_NOTICE_INTERVAL_S - MIN_NOTICE_INTERVAL_S)
    except (
        ConnectionError,
        RuntimeError,
    ):  # the browser went away (RuntimeError: writing a closed transport)
        pass
    finally:
        listener.close()
    return response


def _notice(topics: list[str], now_ms: int) -> bytes:
    return b"event: change\ndata: " + dumps({"topics": topics, "now": now_ms}) + b"\n\n"


# -- helpers --------------------------------------------------------------------------------------------


def _page(call: Call, template: str, view: str, status: int = 200, **context: Any) -> web.Response:
    html = page(
        template,
        view=view,
        topics=TOPICS[view],
        here=call.request.path_qs,
        clock=views.clock(call.backend),
        hint_of=views.hint_of,
        query_string=views.query_string,
        **context,
    )
    return web.Response(text=html, status=status, content_type=HTML, headers=PAGE_HEADERS)


def _not_found(call: Call, exc: NotFound) -> web.Response:
    response = _page(call, "notfound.html", "notfound", status=404, message=exc.detail)
    response.headers["x-request-id"] = client_request_id(call.request) or str(uuid.uuid4())  # as every error
    return response


def _tenant(call: Call) -> views.Tenant:
    tenant = views.tenant_of(call.query.get("org"), call.query.get("sandbox"))
    if tenant is None:
        raise BadRequest("Query parameter 'org' is required (with optional 'sandbox')")
    return tenant


async def _form(call: Call) -> dict[str, str]:
    """A form post from the dashboard's own pages: a cross-site one (another page the browser has open) is
    refused, since the control plane has no credentials to protect it."""
    origin = call.headers.get("Origin")
    request = call.request
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise Forbidden(f"Dashboard actions come from the dashboard's own pages, not from {origin[:100]}")
    if call.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden("Dashboard actions come from the dashboard's own pages")
    raw = await body_of(call)
    if len(raw) > MAX_FORM_BYTES:
        raise BadRequest(f"A dashboard form is at most {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"Not a form: {exc}") from None
    return {name: values[-1] for name, values in fields.items()}


def _text(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise BadRequest(f"Form field '{name}' is required")
    return value


def _number(form: dict[str, str], name: str, default: float | None = None) -> float:
    raw = form.get(name, "").strip()
    if not raw and default is not None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"Form field '{name}' must be a number, got '{raw[:40]}'") from None
    if not math.isfinite(value) or value < 0:
        raise BadRequest(f"Form field '{name}' must be a finite number of at least 0, got '{raw[:40]}'")
    return value


def _done(call: Call, form: dict[str, str], message: str) -> web.Response:
    if "application/json" in call.headers.get("Accept", ""):
        return json_response({"message": message})
    target = form.get("next", "")
    if not target.startswith(UI) or "\\" in target or "\r" in target or "\n" in target:
        target = UI
    return web.Response(status=303, headers={"Location": target})
