"""Typed AEP errors and the one place that renders them.

Domain code raises `ApiError` subclasses that know nothing of HTTP framing; `render_error` writes them in
the envelope of the route group the request fell in (declared with the routes, in app.py): UPS for the
Profile services, OAuth 2.0 for IMS, the problem shape elsewhere. The gateway's refusals have a shape of
their own wherever they happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from emulator.jsonio import dumps


class Envelope(Enum):
    """The shape of a service's error bodies."""

    UPS = "ups"  # Unified Profile Service: {"type", "title", "status", "requestId", "errors"}
    PROBLEM = "problem"  # Catalog, Data Access: {"type", "status", "title", "detail"}
    OAUTH = "oauth"  # IMS: {"error", "error_description"} (RFC 6749 section 5.2)


class ApiError(Exception):
    """An error a client sees: HTTP status, AEP title, human detail, and an optional AEP code."""

    status = 500
    title = "InternalServerError"
    ups_code = "113999"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400
    title = "BadRequestError"
    ups_code = "113001"


class SchemaViolation(BadRequest):
    """A document that breaks its JSON Schema: the 400 names the path and the rule; the rest is for the
    near-miss hint (emulator/hints.py): the keys the object had, those its schema knows, and for a
    `required` or `additionalProperties` failure the keys missing or unexpected."""

    def __init__(
        self,
        detail: str,
        *,
        json_path: str,
        rule: str,
        message: str,
        present: tuple[str, ...] = (),
        known: tuple[str, ...] = (),
        missing: tuple[str, ...] = (),
        unexpected: tuple[str, ...] = (),
    ):
        super().__init__(detail)
        self.json_path = json_path
        self.rule = rule
        self.message = message
        self.present = present
        self.known = known
        self.missing = missing
        self.unexpected = unexpected


class NotFound(ApiError):
    status = 404
    title = "NotFoundError"
    ups_code = "113000"


class MethodNotAllowed(ApiError):
    status = 405
    title = "MethodNotAllowedError"
    ups_code = "113005"

    def __init__(self, method: str, allowed: list[str]):
        self.allowed = allowed
        super().__init__(
            f"Method {method} is not allowed here; allowed: {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )


class Forbidden(ApiError):
    status = 403
    title = "ForbiddenError"


class Conflict(ApiError):
    status = 409
    title = "ConflictError"
    ups_code = "113009"


class Unprocessable(ApiError):
    status = 422
    title = "UnprocessableEntityError"
    ups_code = "113022"


class RequestTimeout(ApiError):
    status = 408
    title = "RequestTimeoutError"
    ups_code = "113008"


class UnsupportedMediaType(ApiError):
    status = 415
    title = "UnsupportedMediaTypeError"
    ups_code = "113015"


class ExpectationFailed(ApiError):
    status = 417
    title = "ExpectationFailedError"
    ups_code = "113017"


class PayloadTooLarge(ApiError):
    status = 413
    title = "PayloadTooLargeError"
    ups_code = "113013"


class UriTooLong(ApiError):
    status = 414
    title = "UriTooLongError"
    ups_code = "113014"


class TooManyRequests(ApiError):
    status = 429
    title = "TooManyRequestsError"
    ups_code = "113029"


class HeaderFieldsTooLarge(ApiError):
    status = 431
    title = "RequestHeaderFieldsTooLargeError"
    ups_code = "113031"


class RangeNotSatisfiable(ApiError):
    status = 416
    title = "RangeNotSatisfiableError"
    ups_code = "113016"


class InjectedFault(ApiError):
    """An HTTP-level fault a scenario asked for (status, headers and optional body chosen by it)."""

    def __init__(self, status: int, headers: dict[str, str], body: Any | None = None):
        super().__init__(f"Injected fault: HTTP {status}", headers=headers)
        self.status = status
        self.title = _TITLES.get(status, "ServiceError")
        self.ups_code = f"1139{status % 100:02d}"
        self.body = body


_TITLES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "NotFoundError",
    422: "UnprocessableEntityError",
    429: "TooManyRequestsError",
    500: "InternalServerError",
    502: "BadGatewayError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
}


@dataclass(frozen=True)
class GatewayRule:
    """One of AEP's API-gateway refusals; always rendered as `{"error_code", "message"}`."""

    status: int
    error_code: str
    message: str


class GatewayError(Exception):
    def __init__(self, rule: GatewayRule):
        super().__init__(rule.message)
        self.rule = rule
        self.headers: dict[str, str] = {}


MISSING_TOKEN = GatewayRule(401, "403010", "Oauth token is missing.")
INVALID_TOKEN = GatewayRule(401, "401013", "Oauth token is not valid")
MISSING_API_KEY = GatewayRule(403, "403000", "Api Key is required")
INVALID_API_KEY = GatewayRule(403, "403003", "Api Key is invalid")
MISSING_ORG = GatewayRule(400, "400003", "Missing header")
ORG_NOT_ENTITLED = GatewayRule(403, "403025", "Profile is not valid")


class InvalidContentType(BadRequest):
    """The gateway's content-type rule; AEP answers in the problem shape whatever the service."""

    def __init__(self) -> None:
        super().__init__("A valid content-type must be specified")


class OAuthError(ApiError):
    """IMS errors, in the OAuth 2.0 shape (RFC 6749 §5.2)."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error


def _oauth_code(status: int) -> str:
    """RFC 6749's codes: `server_error` and `temporarily_unavailable` (section 4.1.2.1) for the service's
    own trouble, `invalid_request` for any other refusal of the request."""
    if status in (429, 503):
        return "temporarily_unavailable"
    if status >= 500:
        return "server_error"
    return "invalid_client" if status == 401 else "invalid_request"


def render_error(exc: ApiError | GatewayError, envelope: Envelope, request_id: str) -> tuple[int, bytes]:
    """Status and JSON body for an error, in `envelope` (the route group's)."""
    body: Any
    if isinstance(exc, GatewayError):
        rule = exc.rule
        return rule.status, dumps({"error_code": rule.error_code, "message": rule.message})
    if isinstance(exc, InjectedFault) and exc.body is not None:
        return exc.status, dumps(exc.body)
    if isinstance(exc, OAuthError):  # IMS's own refusals, in the OAuth 2.0 shape (RFC 6749 section 5.2)
        body = {"error": exc.error, "error_description": exc.detail}
    elif envelope is Envelope.OAUTH:  # anything else under /ims/: an unknown path, a method, a size
        body = {"error": _oauth_code(exc.status), "error_description": exc.detail}
    elif envelope is Envelope.UPS and not isinstance(exc, InvalidContentType):
        code = f"UPAPI-{exc.ups_code}-{exc.status}"
        body = {
            "type": f"https://ns.adobe.com/aep/errors/{code}",
            "title": exc.title,
            "status": exc.status,
            "requestId": request_id,
            "errors": {str(exc.status): [{"code": code, "message": exc.detail}]},
        }
    else:
        body = {
            "type": "/placeholder/type/uri",
            "status": exc.status,
            "title": exc.title,
            "detail": exc.detail,
        }
    return exc.status, dumps(body)
