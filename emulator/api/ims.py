"""Adobe IMS OAuth Server-to-Server: POST /ims/token/v3, and /ims/token/v2 the same way (form body, or
query string)."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl

from aiohttp import web

from emulator.api.common import Call, body_of, json_response
from emulator.errors import OAuthError
from emulator.options import TOKEN_LIFETIME_SECONDS
from emulator.validation import describe

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
GRANT_TYPE = "client_credentials"
REQUEST_SCHEMA = "ims.token.request"
# RFC 6749 §5.1: token responses must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def token(call: Call) -> web.Response:
    fields = await _parameters(call)
    grant_type = fields.get("grant_type")
    if grant_type is None:
        request = call.request
        hint = "" if request.content_type == FORM or not request.body_exists else f"; send the form as {FORM}"
        raise OAuthError(400, "invalid_request", f"Missing required parameter: grant_type{hint}")
    if grant_type != GRANT_TYPE:
        raise OAuthError(400, "unsupported_grant_type", f"Grant type '{grant_type}' is not supported")
    backend = call.backend
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


async def _parameters(call: Call) -> dict[str, str]:
    """Query-string parameters, overridden by the form body (which IMS recommends); files are ignored.
    The body is read like every other (emulator/api/bodies.py) and parsed here, so that a charset or a
    form that does not decode is IMS's 400, not an error of the form parser."""
    request = call.request
    fields = dict(call.query)
    if request.body_exists and request.content_type in (FORM, MULTIPART):
        body = await body_of(call)
        try:
            if request.content_type == FORM:
                form = _urlencoded(body, request.charset)
            else:
                form = _multipart(call, body)
        except (LookupError, UnicodeError, ValueError):
            raise OAuthError(400, "invalid_request", "The form body could not be parsed") from None
        fields.update(form)
    return fields


def _urlencoded(body: bytes, charset: str | None) -> list[tuple[str, str]]:
    encoding = charset or "utf-8"
    return parse_qsl(body.decode(encoding).rstrip(), keep_blank_values=True, encoding=encoding)


def _multipart(call: Call, body: bytes) -> list[tuple[str, str]]:
    head = f"Content-Type: {call.headers.get('Content-Type', '')}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("not a multipart body")
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue  # a file part, or one without a field name
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            fields.append((name, payload.decode(part.get_content_charset() or "utf-8")))
    return fields
