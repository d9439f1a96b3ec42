"""What every handler needs: the backend, JSON in and out, and scenario faults."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from emulator.backend import Backend
from emulator.errors import BadRequest, InjectedFault
from emulator.scenarios import Fault

BACKEND = web.AppKey("backend", Backend)
JSON = "application/json"


class DropConnection(Exception):
    """A scenario fault that closes the connection without an answer."""


def backend_of(request: web.Request) -> Backend:
    return request.app[BACKEND]


async def read_json(request: web.Request, schema: str | None = None) -> Any:
    """The request body as JSON, validated against `schemas/<schema>.schema.json` when named."""
    raw = await request.read()
    if not raw:
        raise BadRequest("Request body is empty; a JSON document is required")
    try:
        # Strict UTF-8 (RFC 8259): json.loads(bytes) would let encoded surrogates through.
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest("Request body is not valid UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("Request body is not valid JSON: nested too deeply") from None
    if schema is not None:
        backend_of(request).schemas.check(schema, body)
    return body


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259); echoed back, they would make our responses invalid."""
    raise ValueError(f"{name} is not a JSON value")


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
