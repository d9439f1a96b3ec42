"""AEP's API gateway rules (auth and required headers) for the route groups behind the gateway.

The dispatcher runs them before the handler, and for paths no route matches as well, so a request
the gateway refuses never reaches a service, as on the real gateway.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from emulator.api.common import Call
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
from emulator.options import DEFAULT_SANDBOX
from emulator.store import Tenant

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_ADOBE_JSON = re.compile(r"application/vnd\.adobe\.[a-z0-9][a-z0-9.-]*\+json")
# Parameters that may be repeated (their conditions are ANDed): Catalog's `property`, under Catalog only.
REPEATABLE = frozenset({"property"})
REPEATABLE_UNDER = "/data/foundation/catalog/"


def admission(backend: Backend) -> Callable[[Call], None]:
    """The gateway's check of a request behind it, run first by the dispatcher: raises what the gateway
    refuses with; records the caller's tenant and client id on the call."""
    strict = backend.options.auth == "strict"

    def admit(call: Call) -> None:
        request = call.request
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
        if request.method in BODY_METHODS and not is_json(request.content_type):
            raise InvalidContentType()
        sandbox = headers.get("x-sandbox-name") or DEFAULT_SANDBOX
        if not (api_key.isascii() and org.isascii() and sandbox.isascii()):
            _require_text(("x-api-key", api_key), ("x-gw-ims-org-id", org), ("x-sandbox-name", sandbox))
        if request.query_string and len(set(request.query)) != len(request.query):
            # Services read one value per parameter: a parameter repeated with different values is
            # ambiguous, not first-wins. The same value twice is not (aepp's getMergePolicies sends `limit`
            # both in the documented `_links.next.href` and as its own parameter). Catalog's `property` is
            # the exception: its repetitions are ANDed (filter-data.md).
            query = request.query
            repeated = sorted(
                {
                    key
                    for key in query
                    if len(set(query.getall(key))) > 1
                    and not (key in REPEATABLE and request.path.startswith(REPEATABLE_UNDER))
                }
            )
            if repeated:
                raise BadRequest(f"Query parameter '{repeated[0]}' is given more than once")
        call.tenant = Tenant(org, sandbox)
        call.client_id = api_key

    return admit


def is_json(content_type: str) -> bool:
    """`application/json`, or one of Adobe's JSON media types (`application/vnd.adobe.xed+json`,
    `application/vnd.adobe.xdm+json`, ...), which AEP's services read as JSON."""
    return content_type == "application/json" or bool(_ADOBE_JSON.fullmatch(content_type))


def _require_text(*headers: tuple[str, str]) -> None:
    """Bytes that are not UTF-8 arrive as lone surrogates, which no response or file can encode."""
    for name, value in headers:
        if not (value.isascii() or value.isprintable()):
            raise BadRequest(f"Header {name} is not valid UTF-8 text")
