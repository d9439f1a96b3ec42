"""Errors outside any one operation: unknown paths (404) and unsupported methods (405), on every prefix and
every documented path, in the envelope of the service the path belongs to, with `x-request-id`."""

from __future__ import annotations

import pytest

from tests.conftest import assert_matches
from tests.contract.support import Reply, Target, document

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def envelope(path: str) -> str:
    """Export jobs answer in the UPS shape, IMS in the OAuth 2.0 one; every other service and the control
    plane in the problem one."""
    if path.startswith("/ims/"):
        return "error.oauth"
    return "error.ups" if path.startswith("/data/core/ups") else "error.problem"


def check_error(reply: Reply, status: int) -> None:
    assert reply.status == status, str(reply)
    assert reply.content_type == "application/json", str(reply)
    assert reply.headers.get("x-request-id"), str(reply)
    body = reply.json()
    assert_matches(envelope(reply.path), body)
    if envelope(reply.path) != "error.oauth":  # the OAuth shape has no status
        assert body["status"] == status


@pytest.mark.parametrize(
    "path",
    [
        "/data/core/ups/export/segments",
        "/data/foundation/catalog/connections",
        "/data/foundation/export/datasets/x/preview",
        "/_emulator/nothing",
        "/ims/token/v1",
        "/ims/authorize/v2",
        "/",
    ],
)
async def test_unknown_path_is_404(target: Target, path: str) -> None:
    reply = await target.request("GET", path)
    check_error(reply, 404)


def _unsupported() -> list[tuple[str, str, list[str]]]:
    cases = []
    for path, item in document()["paths"].items():
        allowed = sorted(method.upper() for method in item)
        for method in METHODS:
            if method not in allowed:
                concrete = path.replace("{", "").replace("}", "").replace("job_id", "1")
                cases.append((method, concrete, allowed))
    return cases


@pytest.mark.parametrize(("method", "path", "allowed"), _unsupported())
async def test_unsupported_method_is_405_with_allow(
    target: Target, method: str, path: str, allowed: list[str]
) -> None:
    # A JSON body with its Content-Type: the gateway's content-type rule comes before routing.
    reply = await target.request(method, path, data="{}", headers={"x-request-id": "contract-405"})
    check_error(reply, 405)
    assert reply.headers["x-request-id"] == "contract-405"
    assert sorted(m.strip() for m in reply.headers["Allow"].split(",")) == allowed
