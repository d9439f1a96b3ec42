"""The emulator's one request handler: route, gateway, handler, errors, journal, in that order.

`Dispatcher` is what aiohttp calls for every request. It looks the route up in the emulator's own table
(emulator/api/routing.py), applies the gateway's rules where they apply, runs the handler with a `Call`,
turns any exception into an error in the route group's envelope (with a near-miss hint when the request
missed), then records the journal entry and the request's log line. `aep-emulator serve` and the fixture
run it as aiohttp's low-level server (emulator/runner.py); the `Application` of `create_app` routes every
request to it, for pytest-aiohttp's `aiohttp_client`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from itertools import chain
from time import perf_counter
from typing import Any

from aiohttp import HttpVersion11, web

from emulator import logs
from emulator.api import nearmiss
from emulator.api.common import Call, Concern, body_of, client_request_id
from emulator.api.nearmiss import HINT_HEADER
from emulator.api.routing import RouteTable
from emulator.backend import Backend
from emulator.errors import (
    ApiError,
    Envelope,
    ExpectationFailed,
    GatewayError,
    HeaderFieldsTooLarge,
    InjectedFault,
    MethodNotAllowed,
    NotFound,
    UriTooLong,
    render_error,
)
from emulator.faults import DropConnection
from emulator.gateway import admission
from emulator.hints import SANDBOX_HEADER, NearMiss
from emulator.journal import MAX_RESPONSE_BYTES, JournalEntry

log = logging.getLogger("emulator")

# Our limits on the request line and headers, answered with a JSON 414 or 431. aiohttp's own parser limits
# (PARSER_LIMIT_BYTES) sit above them: past those aiohttp refuses the request itself, in plain text.
MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 8 * 1024  # one header line: name and value
MAX_HEADERS_BYTES = 64 * 1024  # all header lines together
PARSER_LIMIT_BYTES = 32 * 1024
_TEXTUAL = ("json", "text/plain", "text/html")  # response types whose bodies the journal keeps
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Dispatcher:
    def __init__(self, backend: Backend, routes: RouteTable):
        self._backend = backend
        self.routes = routes
        self._admit = admission(backend)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = perf_counter()
        backend = self._backend
        journal = backend.journal
        epoch = journal.epoch  # a request started before a reset never enters the next journal
        found = self.routes.resolve(request.method, request.rel_url.path_safe)
        group = found.group
        call = Call(request, backend, self.routes.templates, group, found.params)
        dropped = False
        fault = None
        miss = None
        # A client that sent `Expect: 100-continue` holds its body back until it gets the interim answer.
        held_back = "Expect" in request.headers
        try:
            _check_sizes(request)
            if group.gateway:
                self._admit(call)
            if found.handler is None:
                if found.allowed:
                    raise MethodNotAllowed(request.method, list(found.allowed))
                raise NotFound(f"No resource at {request.path}")
            if held_back:
                await _continue(request)
                held_back = False
            response = await found.handler(call)
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
                # A path served for other methods only is no route for this request's hint.
                miss = _near_miss(nearmiss.refused, call, exc, found.template if found.handler else None)
        else:
            # Served; but a query parameter nobody reads, or a misspelt sandbox header, is a near miss too.
            if request.query_string or (group.gateway and SANDBOX_HEADER not in request.headers):
                miss = _near_miss(nearmiss.served, call, found.template)
        if miss is not None and not response.prepared:
            response.headers[HINT_HEADER] = miss.hint
        duration_ms = (perf_counter() - started) * 1000
        concern = call.concern
        if not group.aep:  # the control plane is never journaled
            if miss is not None or logs.wanted(False):
                _log(request, response, duration_ms, None, concern, fault, miss)
            return response
        headers = request.headers
        tenant = call.tenant
        response_headers = response.headers
        kept, size = _response_body(response, response_headers.get("Content-Type", ""))
        entry = JournalEntry(
            request.method,
            request.rel_url,
            headers,
            await _body_text(call) if request.body_exists and not held_back else "",
            response.status,
            tenant.org if tenant else headers.get("x-gw-ims-org-id"),
            tenant.sandbox if tenant else headers.get("x-sandbox-name"),
            backend.clock.now_ms(),
            dropped=dropped,
            note=call.note,
            request_id=response_headers.get("x-request-id") or client_request_id(request),
            response_body=kept,
            response_size=size,
            response_headers=response_headers,  # a view: aiohttp adds its own headers when it sends
            duration_ms=duration_ms,
            job=concern.job if concern else call.params.get("job_id"),
            scenario=concern.scenario if concern else None,
            fault=fault,
            miss=miss,
            version=request.version,
        )
        journal.record(entry, epoch)
        if miss is not None or logs.wanted(False):
            _log(request, response, duration_ms, entry, concern, fault, miss)
        return response


async def _continue(request: web.BaseRequest) -> None:
    """`Expect: 100-continue` (curl sends it with larger bodies): the interim answer, as aiohttp's router
    would give it, once the gateway has let the request through."""
    expect = request.headers.get("Expect", "")
    if request.version != HttpVersion11:
        return
    if expect.lower() != "100-continue":
        raise ExpectationFailed(f"Unknown expectation '{expect[:64]}'; only 100-continue is supported")
    await request.writer.write(_CONTINUE)
    request.writer.output_size = 0


def _near_miss(diagnose: Callable[..., NearMiss | None], *args: Any) -> NearMiss | None:
    """A near-miss report; never an error of its own (the request's answer stands without a hint)."""
    try:
        return diagnose(*args)
    except Exception:
        log.exception("could not explain a near miss")
        return None


def _log(
    request: web.BaseRequest,
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


def error_response(request: web.BaseRequest, exc: Exception, envelope: Envelope) -> web.Response:
    """The one place an exception becomes an HTTP error, in the envelope of the request's route group."""
    error: ApiError | GatewayError
    if isinstance(exc, ApiError | GatewayError):
        error = exc
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


def _response_body(response: web.StreamResponse, content_type: str) -> tuple[bytes, int]:
    """What the journal keeps of a response body (JSON or text, up to MAX_RESPONSE_BYTES; no copy below it),
    and the body's length."""
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes):
        return b"", response.content_length or 0
    if not content_type.partition(";")[0].rstrip().lower().endswith(_TEXTUAL):
        return b"", len(body)
    return (body if len(body) <= MAX_RESPONSE_BYTES else body[:MAX_RESPONSE_BYTES]), len(body)


async def _body_text(call: Call) -> str:
    try:
        return (await body_of(call)).decode("utf-8", errors="replace")
    except ApiError:  # too large, too slow, or badly encoded: the entry's status says which
        return ""


def _check_sizes(request: web.BaseRequest) -> None:
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
