"""What every handler needs: the backend, the request's route group, JSON in and out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.api.bodies import read_body
from emulator.backend import Backend
from emulator.errors import BadRequest, Envelope
from emulator.jsonio import dumps
from emulator.scenarios import Scenario
from emulator.store import ExportJob

BACKEND = web.AppKey("backend", Backend)
JSON = "application/json"
# Deeper documents are refused when read: no request of the AEP API nests past a dozen levels, and the
# encoder that writes them back (orjson) stops at 255.
MAX_JSON_DEPTH = 64
TOO_DEEP = f"nested too deeply (at most {MAX_JSON_DEPTH} levels)"

Route = tuple[str, str, Handler]  # method, path, handler


@dataclass(frozen=True)
class RouteGroup:
    """Routes of one service that share an error envelope and the gateway's treatment."""

    prefix: str
    envelope: Envelope
    gateway: bool  # AEP's API gateway checks the request first (token, API key, org, content type)
    aep: bool = True  # part of the AEP surface: journaled, and --validation lenient applies
    routes: tuple[Route, ...] = ()


class Concern(NamedTuple):
    """The export job a request concerned and its scenario, for its journal entry and log line."""

    job: str | None
    scenario: str | None


ROUTE_GROUP = web.RequestKey("route_group", RouteGroup)
# What the emulator did that the client did not ask for, recorded with the request in the journal.
JOURNAL_NOTE = web.RequestKey("journal_note", str)
# Set by the handlers that know it (see `concern`); the journal records it with the request.
CONCERN = web.RequestKey("journal_concern", Concern)


def concern(request: web.Request, job: ExportJob | None, scenario: Scenario | None = None) -> None:
    """Record which job (and scenario) the request concerned."""
    if job is not None:
        request[CONCERN] = Concern(str(job.id), job.scenario.name)
    elif scenario is not None:
        request[CONCERN] = Concern(None, scenario.name)


def backend_of(request: web.Request) -> Backend:
    return request.app[BACKEND]


# Echoed in a response header and in bodies: visible ASCII only, and short.
_SAFE_REQUEST_ID = re.compile(r"[!-~]{1,200}")


def client_request_id(request: web.Request) -> str | None:
    """The client's `x-request-id` when it is safe to echo back; None otherwise (and when absent)."""
    value = request.headers.get("x-request-id")
    if value is not None and _SAFE_REQUEST_ID.fullmatch(value):
        return value
    return None


async def body_of(request: web.Request) -> bytes:
    """The request body, decoded, within --max-body-bytes and --body-timeout (see emulator/api/bodies.py)."""
    options = backend_of(request).options
    return await read_body(request, options.max_body_bytes, options.body_timeout)


async def read_json(request: web.Request, schema: str | None = None) -> Any:
    """The request body as JSON, validated against `schemas/<schema>.schema.json` when named.

    Strict RFC 8259 (orjson): UTF-8 only, no lone surrogates, no NaN or Infinity, no number that overflows
    to infinity; whatever is accepted can be written back as valid JSON.
    """
    raw = await body_of(request)
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
        backend = backend_of(request)
        # --validation lenient is for clients of the AEP surface; the control plane stays strict.
        lenient = backend.options.validation == "lenient" and request[ROUTE_GROUP].aep
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
