"""Adobe IMS OAuth Server-to-Server: POST /ims/token/v3, and /ims/token/v2 the same way (form body, or
query string)."""

from __future__ import annotations

from aiohttp import web

from emulator.api.common import backend_of, json_response
from emulator.errors import OAuthError
from emulator.options import TOKEN_LIFETIME_SECONDS
from emulator.validation import describe

FORM = "application/x-www-form-urlencoded"
GRANT_TYPE = "client_credentials"
REQUEST_SCHEMA = "ims.token.request"
# RFC 6749 §5.1: token responses must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def token(request: web.Request) -> web.Response:
    fields = await _parameters(request)
    grant_type = fields.get("grant_type")
    if grant_type is None:
        hint = "" if request.content_type == FORM or not request.body_exists else f"; send the form as {FORM}"
        raise OAuthError(400, "invalid_request", f"Missing required parameter: grant_type{hint}")
    if grant_type != GRANT_TYPE:
        raise OAuthError(400, "unsupported_grant_type", f"Grant type '{grant_type}' is not supported")
    backend = backend_of(request)
    error = backend.schemas.first_error(REQUEST_SCHEMA, fields)
    if error is not None:
        if error.validator == "required":
            required = backend.schemas.documents[REQUEST_SCHEMA]["required"]
            missing = next(name for name in required if name not in fields)
            raise OAuthError(400, "invalid_request", f"Missing required parameter: {missing}")
        raise OAuthError(400, "invalid_request", f"Invalid parameter {describe(error)}")
    minted = backend.tokens.issue(fields["client_id"], fields["client_secret"], backend.clock.now_ms())
    return json_response(
        {"access_token": minted.value, "token_type": "bearer", "expires_in": TOKEN_LIFETIME_SECONDS},
        headers=NO_STORE,
    )


async def _parameters(request: web.Request) -> dict[str, str]:
    """Query-string parameters, overridden by the form body (which IMS recommends); files are ignored."""
    fields = dict(request.query)
    if request.body_exists:
        try:
            form = await request.post()
        except ValueError:
            raise OAuthError(400, "invalid_request", "The form body could not be parsed") from None
        fields.update((name, value) for name, value in form.items() if isinstance(value, str))
    return fields
