"""Keeps the examples honest without cluttering them: every JSON response their HTTP clients receive
(requests, hence aepp too, and aiohttp) is checked against its schema behind their back.

Users copying an example need none of this.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import requests

from tests.conftest import assert_matches

# (method, path pattern, schema of a 2xx JSON answer); first match wins.
RESPONSE_SCHEMAS = [
    ("POST", r"/ims/token/v3", "ims.token.response"),
    ("POST", r"/data/foundation/catalog/dataSets", "dataset.create.response"),
    ("GET", r"/data/foundation/catalog/dataSets(/[^/]+)?", "dataset.map.response"),
    ("GET", r"/data/foundation/catalog/batches(/[^/]+)?", "batch.map.response"),
    ("POST", r"/data/core/ups/export/jobs", "export-job.response"),
    ("GET", r"/data/core/ups/export/jobs/?", "export-job.list.response"),
    ("GET", r"/data/core/ups/export/jobs/[^/]+", "export-job.response"),
    ("DELETE", r"/data/core/ups/export/jobs/[^/]+", "export-job.cancel.response"),
    ("GET", r"/data/foundation/export/batches/[^/]+/files", "data-access.batch-files.response"),
    ("GET", r"/data/foundation/export/files/[^/]+", "data-access.file-listing.response"),
    ("GET", r"/_emulator/requests", "control.requests.response"),
    ("POST", r"/data/core/ups/segment/definitions/bulk-get", "segment-definition.bulk-get.response"),
    ("POST", r"/data/core/ups/segment/definitions", "segment-definition.response"),
    ("GET", r"/data/core/ups/segment/definitions", "segment-definition.list.response"),
    ("GET", r"/data/core/ups/segment/definitions/[^/]+", "segment-definition.response"),
    ("PATCH", r"/data/core/ups/segment/definitions/[^/]+", "segment-definition.response"),
    ("DELETE", r"/data/core/ups/segment/definitions/[^/]+", "segment-definition.delete.response"),
    ("POST", r"/data/core/ups/segment/jobs/bulk-get", "segment-job.bulk-get.response"),
    ("POST", r"/data/core/ups/segment/jobs", "segment-job.response"),
    ("GET", r"/data/core/ups/segment/jobs", "segment-job.list.response"),
    ("GET", r"/data/core/ups/segment/jobs/[^/]+", "segment-job.response"),
    ("DELETE", r"/data/core/ups/segment/jobs/[^/]+", "segment-job.cancel.response"),
    ("POST", r"/data/core/ups/config/mergePolicies/bulk-get", "merge-policy.bulk-get.response"),
    ("GET", r"/data/core/ups/config/mergePolicies", "merge-policy.list.response"),
    ("POST", r"/data/core/ups/config/mergePolicies", "merge-policy.response"),
    ("GET", r"/data/core/ups/config/mergePolicies/[^/]+", "merge-policy.response"),
    ("PATCH", r"/data/core/ups/config/mergePolicies/[^/]+", "merge-policy.response"),
]


def schema_for(method: str, path: str, status: int, body: Any) -> str:
    if status >= 400:
        if path.startswith("/ims/"):
            return "error.oauth"
        if isinstance(body, dict) and "error_code" in body:
            return "error.gateway"
        return "error.ups" if path.startswith("/data/core/ups/") else "error.problem"
    for route_method, pattern, schema in RESPONSE_SCHEMAS:
        if method == route_method and re.fullmatch(pattern, path):
            return schema
    raise AssertionError(f"no schema is known for {method} {path} -> {status}")


def check_response(method: str, url: str, status: int, content_type: str, body: Callable[[], Any]) -> None:
    """Fail the test on a response that is not JSON (file downloads aside) or does not match its schema."""
    parts = urlsplit(url)
    if parts.path.startswith("/data/foundation/export/files/") and "path" in parse_qs(parts.query):
        return  # the file's bytes
    assert content_type.startswith("application/json"), f"{method} {url} -> {status} {content_type}"
    parsed = body()
    assert_matches(schema_for(method, parts.path, status, parsed), parsed)


@pytest.fixture(autouse=True)
def _check_every_response(monkeypatch: pytest.MonkeyPatch) -> None:
    send = requests.Session.send

    def checked_send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        response = send(self, request, **kwargs)
        content_type = response.headers.get("Content-Type", "")
        check_response(
            str(request.method), str(request.url), response.status_code, content_type, response.json
        )
        return response

    parse = aiohttp.ClientResponse.json

    async def checked_json(self: aiohttp.ClientResponse, *args: Any, **kwargs: Any) -> Any:
        body = await parse(self, *args, **kwargs)
        check_response(self.method, str(self.url), self.status, self.content_type, lambda: body)
        return body

    monkeypatch.setattr(requests.Session, "send", checked_send)
    monkeypatch.setattr(aiohttp.ClientResponse, "json", checked_json)
