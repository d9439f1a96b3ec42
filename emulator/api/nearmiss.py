"""From a request that went wrong (or was served with something ignored) to its near-miss report
(emulator/hints.py). Called by the dispatcher only on those requests: never on the happy path."""

from __future__ import annotations

from emulator import hints
from emulator.api.common import Call
from emulator.errors import (
    BadRequest,
    GatewayError,
    InjectedFault,
    InvalidContentType,
    MethodNotAllowed,
    NotFound,
    SchemaViolation,
)
from emulator.hints import NearMiss

HINT_HEADER = "x-emulator-hint"


def _seen(call: Call, template: str | None) -> hints.Request:
    request = call.request
    route = f"{request.method} {template}" if template is not None else None
    return hints.Request(
        method=request.method,
        path=request.path,
        headers=request.headers,
        query=request.query,
        content_type=request.content_type,
        route=route,
    )


def refused(call: Call, exc: Exception, template: str | None) -> NearMiss | None:
    """The report for a request answered with an error: no route (`template` None), not this method,
    refused by the gateway, or invalid; None for any other error (an unknown id, a scenario's fault, a
    limit)."""
    if isinstance(exc, InjectedFault):
        return None
    request, backend, routes = call.request, call.backend, call.routes
    seen = _seen(call, template)
    report: NearMiss | None = None
    if isinstance(exc, GatewayError):
        report = hints.gateway_miss(
            seen,
            exc.rule,
            strict=backend.options.auth == "strict",
            minted_client=_minted_client(call),
        )
    elif isinstance(exc, InvalidContentType):
        report = hints.gateway_miss(seen, None, strict=backend.options.auth == "strict")
    elif isinstance(exc, MethodNotAllowed):
        return hints.route_miss(request.method, request.path, routes, exc.allowed)
    elif isinstance(exc, NotFound) and seen.route is None:
        return hints.route_miss(request.method, request.path, routes)
    elif isinstance(exc, BadRequest):
        return hints.validation_miss(seen, exc.detail, exc if isinstance(exc, SchemaViolation) else None)
    if report is not None and seen.route is None:  # refused at the gateway on its way to no route at all
        routing = hints.route_miss(request.method, request.path, routes)
        report = NearMiss(
            report.kind,
            hints.one_line(f"{report.hint}; and {routing.hint}"),
            report.closest + routing.closest,
        )
    return report


def served(call: Call, template: str | None) -> NearMiss | None:
    """The report for a request that was served, but with a query parameter or header that was ignored."""
    return hints.served_miss(_seen(call, template))


def _minted_client(call: Call) -> str | None:
    backend = call.backend
    token = call.headers.get("Authorization", "").partition(" ")[2].strip()
    minted = backend.tokens.valid(token, backend.clock.now_ms()) if token else None
    return minted.client_id if minted is not None else None
