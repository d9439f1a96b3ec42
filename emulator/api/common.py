"""What every handler needs: the backend, JSON in and out, and scenario faults."""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any

from aiohttp import web

from emulator.backend import Backend
from emulator.errors import CONTROL_PREFIX, BadRequest, InjectedFault
from emulator.scenarios import Fault

BACKEND = web.AppKey("backend", Backend)
JSON = "application/json"


class DropConnection(Exception):
    """A scenario fault that closes the connection without an answer."""


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


async def read_json(request: web.Request, schema: str | None = None) -> Any:
    """The request body as JSON, validated against `schemas/<schema>.schema.json` when named."""
    raw = await request.read()
    if not raw:
        raise BadRequest("Request body is empty; a JSON document is required")
    try:
        # Strict UTF-8 (RFC 8259): json.loads(bytes) would let encoded surrogates through.
        text = raw.decode("utf-8")
        body = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        raise BadRequest("Request body is not valid UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("Request body is not valid JSON: nested too deeply") from None
    if "\\u" in text:
        _reject_lone_surrogates(body)
    if schema is not None:
        backend = backend_of(request)
        # --validation lenient is for clients of the AEP paths; the control plane stays strict.
        lenient = backend.options.validation == "lenient" and not request.path.startswith(CONTROL_PREFIX)
        body = backend.schemas.check(schema, body, lenient=lenient)
    return body


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259); echoed back, they would make our responses invalid."""
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    """1e400 parses as infinity, which would be echoed back as the non-JSON `Infinity`."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _reject_lone_surrogates(body: Any) -> None:
    """An escaped lone surrogate (\\ud800) parses, then breaks every later UTF-8 encoding of the value."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("Request body is not valid JSON: it escapes a lone UTF-16 surrogate") from None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
        content_type=JSON,
    )


async def apply_fault(fault: Fault | None) -> None:
    """Delay, drop or answer for the scenario; a delay alone lets the request go on."""
    if fault is None:
        return
    if fault.delay_seconds:
        await asyncio.sleep(fault.delay_seconds)
    if fault.drop:
        raise DropConnection()
    if fault.status is not None:
        raise InjectedFault(fault.status, dict(fault.headers), fault.body)
