"""What every handler needs: its Call (the request, the backend, the route, the tenant), JSON in and out."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy, MultiMapping

from emulator.api.bodies import read_body
from emulator.backend import Backend
from emulator.errors import ApiError, BadRequest, Envelope
from emulator.hints import Route as Template
from emulator.jsonio import dumps
from emulator.scenarios import Scenario
from emulator.store import ExportJob, Tenant

BACKEND = web.AppKey("backend", Backend)
JSON = "application/json"
# Deeper documents are refused when read: no request of the AEP API nests past a dozen levels, and the
# encoder that writes them back (orjson) stops at 255.
MAX_JSON_DEPTH = 64
TOO_DEEP = f"nested too deeply (at most {MAX_JSON_DEPTH} levels)"


class Concern(NamedTuple):
    """The export job a request concerned and its scenario, for its journal entry and log line."""

    job: str | None
    scenario: str | None


class Call:
    """One request on its way through the emulator: what the dispatcher found out about it (the route, its
    path parameters, the caller's tenant) and what the handler tells the journal (the job it concerned, a
    note), in one object made once per request. Handlers take a Call, not a bare aiohttp request."""

    __slots__ = (
        "backend",
        "body",
        "client_id",
        "concern",
        "group",
        "note",
        "params",
        "request",
        "routes",
        "tenant",
    )

    def __init__(
        self,
        request: web.BaseRequest,
        backend: Backend,
        routes: tuple[Template, ...],
        group: RouteGroup,
        params: Mapping[str, str],
    ):
        self.request = request
        self.backend = backend
        self.routes = routes  # every route's (method, template): near-miss reports and the OpenAPI document
        self.group = group
        self.params = params
        self.tenant: Tenant | None = None  # set by the gateway, for the route groups behind it
        self.client_id = ""  # the caller's API key, set with the tenant
        self.concern: Concern | None = None
        # What the emulator did that the client did not ask for, recorded with the request in the journal.
        self.note: str | None = None
        # The decoded body once read, or the error reading it ended with (see body_of).
        self.body: bytes | ApiError | None = None

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.request.headers

    @property
    def query(self) -> MultiMapping[str]:
        return self.request.query

    @property
    def own_tenant(self) -> Tenant:
        """The caller's tenant, on a route behind the gateway (which always sets it)."""
        assert self.tenant is not None, "only routes behind the gateway have a tenant"
        return self.tenant

    def concerns(self, job: ExportJob | None, scenario: Scenario | None = None) -> None:
        """Record which job (and scenario) the request concerned."""
        if job is not None:
            self.concern = Concern(str(job.id), job.scenario.name)
        elif scenario is not None:
            self.concern = Concern(None, scenario.name)


Handler = Callable[[Call], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]  # method, path, handler


@dataclass(frozen=True)
class RouteGroup:
    """Routes of one service that share an error envelope and the gateway's treatment."""

    prefix: str
    envelope: Envelope
    gateway: bool  # AEP's API gateway checks the request first (token, API key, org, content type)
    aep: bool = True  # part of the AEP surface: journaled, and --validation lenient applies
    routes: tuple[Route, ...] = ()


# Echoed in a response header and in bodies: visible ASCII only, and short.
_SAFE_REQUEST_ID = re.compile(r"[!-~]{1,200}")


def client_request_id(request: web.BaseRequest) -> str | None:
    """The client's `x-request-id` when it is safe to echo back; None otherwise (and when absent)."""
    value = request.headers.get("x-request-id")
    if value is not None and _SAFE_REQUEST_ID.fullmatch(value):
        return value
    return None


async def body_of(call: Call) -> bytes:
    """The request body, decoded, within --max-body-bytes and --body-timeout (see emulator/api/bodies.py);
    read once, then the same bytes (or the same error) for every caller."""
    done = call.body
    if isinstance(done, bytes):
        return done
    if done is not None:
        raise done
    options = call.backend.options
    try:
        body = await read_body(call.request, options.max_body_bytes, options.body_timeout)
    except ApiError as exc:
        call.body = exc
        raise
    call.body = body
    return body


async def read_json(call: Call, schema: str | None = None) -> Any:
    """The request body as JSON, validated against `schemas/<schema>.schema.json` when named.

    Strict RFC 8259 (orjson): UTF-8 only, no lone surrogates, no NaN or Infinity, no number that overflows
    to infinity; whatever is accepted can be written back as valid JSON.
    """
    raw = await body_of(call)
    if not raw:
        raise BadRequest("Request body is empty; a JSON document is required")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Request body is not valid JSON: {_decode_error(exc, raw)}") from None
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _depth_exceeds(body, MAX_JSON_DEPTH):
        raise BadRequest(
            f"Request body is not valid JSON: nested too deeply (at most {MAX_JSON_DEPTH} levels)"
        )
    if schema is not None:
        backend = call.backend
        # --validation lenient is for clients of the AEP surface; the control plane stays strict.
        lenient = backend.options.validation == "lenient" and call.group.aep
        body = backend.schemas.check(schema, body, lenient=lenient)
    return body


def _decode_error(exc: orjson.JSONDecodeError, raw: bytes) -> str:
    if "depth" in exc.msg:
        return TOO_DEEP
    near = raw[exc.pos : exc.pos + 24].decode("utf-8", errors="replace")
    return f"{exc.msg} at line {exc.lineno}, column {exc.colno} (near {near!r})"


def _depth_exceeds(document: Any, limit: int) -> bool:
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in value if isinstance(child, dict | list))
    return False


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(body), status=status, headers=headers, content_type=JSON)
