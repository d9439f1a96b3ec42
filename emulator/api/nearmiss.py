"""From an aiohttp request that went wrong (or was served with something ignored) to its near-miss report
(emulator/hints.py). Called by the app's middleware only on those requests: never on the happy path."""

from __future__ import annotations

from aiohttp import web

from emulator import hints
from emulator.backend import Backend
from emulator.errors import BadRequest, GatewayError, InjectedFault, InvalidContentType, SchemaViolation
from emulator.hints import NearMiss, Route

HINT_HEADER = "x-emulator-hint"


def _seen(request: web.Request) -> hints.Request:
    resource = request.match_info.route.resource
    route = f"{request.method} {resource.canonical}" if resource is not None else None
    return hints.Request(
        method=request.method,
        path=request.path,
        headers=request.headers,
        query=request.query,
        content_type=request.content_type,
        route=route,
    )


def refused(
    request: web.Request, exc: Exception, backend: Backend, routes: tuple[Route, ...]
) -> NearMiss | None:
    """The report for a request answered with an error: no route, not this method, refused by the gateway,
    or invalid; None for any other error (an unknown id, a scenario's fault, a limit)."""
    if isinstance(exc, InjectedFault):
        return None
    seen = _seen(request)
    report: NearMiss | None = None
    if isinstance(exc, GatewayError):
        report = hints.gateway_miss(
            seen,
            exc.rule,
            strict=backend.options.auth == "strict",
            minted_client=_minted_client(request, backend),
        )
    elif isinstance(exc, InvalidContentType):
        report = hints.gateway_miss(seen, None, strict=backend.options.auth == "strict")
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        return hints.route_miss(request.method, request.path, routes, sorted(exc.allowed_methods))
    elif isinstance(exc, web.HTTPNotFound) and seen.route is None:
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


def served(request: web.Request) -> NearMiss | None:
    """The report for a request that was served, but with a query parameter or header that was ignored."""
    return hints.served_miss(_seen(request))


def _minted_client(request: web.Request, backend: Backend) -> str | None:
    token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    minted = backend.tokens.valid(token, backend.clock.now_ms()) if token else None
    return minted.client_id if minted is not None else None
