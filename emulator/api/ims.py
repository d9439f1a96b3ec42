"""Adobe IMS OAuth Server-to-Server: POST /ims/token/v3 (form body, or query string)."""

from __future__ import annotations

from aiohttp import web

from emulator.api.common import backend_of, json_response
from emulator.errors import OAuthError
from emulator.tokens import TOKEN_LIFETIME_SECONDS

REQUIRED_FIELDS = ("client_id", "client_secret", "scope")


async def token(request: web.Request) -> web.Response:
    fields = dict(request.query)
    if request.content_type == "application/x-www-form-urlencoded" or request.body_exists:
        try:
            fields.update(await request.post())
        except ValueError:
            raise OAuthError(400, "invalid_request", "The form body could not be parsed") from None
    grant_type = fields.get("grant_type")
    if grant_type is None:
        raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
    if grant_type != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type", f"Grant type '{grant_type}' is not supported")
    for name in REQUIRED_FIELDS:
        if not isinstance(fields.get(name), str) or not fields[name]:
            raise OAuthError(400, "invalid_request", f"Missing required parameter: {name}")
    backend = backend_of(request)
    minted = backend.tokens.mint(str(fields["client_id"]), backend.clock.now_ms())
    return json_response(
        {"access_token": minted.value, "token_type": "bearer", "expires_in": TOKEN_LIFETIME_SECONDS}
    )
