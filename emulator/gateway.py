"""AEP's API gateway rules (auth and required headers) for every `/data/...` path.

Runs before routing, so a request that fails here never reaches a handler, as on the real gateway.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.backend import Backend
from emulator.errors import (
    INVALID_API_KEY,
    INVALID_TOKEN,
    MISSING_API_KEY,
    MISSING_ORG,
    MISSING_TOKEN,
    ORG_NOT_ENTITLED,
    BadRequest,
    GatewayError,
    InvalidContentType,
)
from emulator.store import Tenant

AEP_PREFIX = "/data/"
DEFAULT_SANDBOX = "prod"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
TENANT = web.RequestKey("aep_tenant", Tenant)
CLIENT_ID = web.RequestKey("aep_client_id", str)


def gateway_middleware(backend: Backend) -> web.middleware:  # type: ignore[valid-type]
    strict = backend.options.auth == "strict"

    @web.middleware
    async def gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(AEP_PREFIX):
            return await handler(request)
        headers = request.headers
        authorization = headers.get("Authorization")
        if authorization is None:
            raise GatewayError(MISSING_TOKEN)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise GatewayError(INVALID_TOKEN)
        minted = backend.tokens.valid(token, backend.clock.now_ms()) if strict else None
        if strict and minted is None:
            raise GatewayError(INVALID_TOKEN)
        api_key = headers.get("x-api-key")
        if not api_key:
            raise GatewayError(MISSING_API_KEY)
        if minted is not None and minted.client_id != api_key:
            raise GatewayError(INVALID_API_KEY)
        org = headers.get("x-gw-ims-org-id")
        if not org:
            raise GatewayError(MISSING_ORG)
        if minted is not None and not minted.allows(org):
            raise GatewayError(ORG_NOT_ENTITLED)
        if request.method in BODY_METHODS and request.content_type != "application/json":
            raise InvalidContentType()
        sandbox = headers.get("x-sandbox-name") or DEFAULT_SANDBOX
        for name, value in (("x-api-key", api_key), ("x-gw-ims-org-id", org), ("x-sandbox-name", sandbox)):
            if not (value.isascii() or value.isprintable()):
                # Bytes that are not UTF-8 arrive as lone surrogates, which no response or file can encode.
                raise BadRequest(f"Header {name} is not valid UTF-8 text")
        request[TENANT] = Tenant(org, sandbox)
        request[CLIENT_ID] = api_key
        return await handler(request)

    return gateway


def tenant_of(request: web.Request) -> Tenant:
    tenant: Tenant = request[TENANT]
    return tenant
