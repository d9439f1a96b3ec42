"""Shared test helpers: an in-process app on a manual clock, AEP headers, and response-schema checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.merge_policies import default_policy_id
from emulator.options import Options
from emulator.store import Tenant
from emulator.validation import bundled_schemas

ORG = "TESTORG@AdobeOrg"
OTHER_ORG = "OTHERORG@AdobeOrg"
START_MS = 1_700_000_000_000
PROFILE_UNION = "https://ns.adobe.com/xdm/context/profile__union"
# The id of ORG's (sandbox prod) default merge policy: deterministic, so test bodies can name it.
DEFAULT_MERGE_POLICY = default_policy_id(Tenant(ORG, "prod"))


def aep_headers(org: str = ORG, sandbox: str | None = "prod", **extra: str) -> dict[str, str]:
    headers = {
        "Authorization": "Bearer test-token",
        "x-api-key": "test-client",
        "x-gw-ims-org-id": org,
        "Content-Type": "application/json",
    }
    if sandbox is not None:
        headers["x-sandbox-name"] = sandbox
    headers.update(extra)
    return headers


def assert_matches(schema: str, body: Any) -> None:
    """Fail with every violation when `body` does not match `schemas/<schema>.schema.json`."""
    errors = bundled_schemas().errors(schema, body)
    assert not errors, f"response does not match {schema}: {errors}"


@pytest.fixture
def options() -> Options:
    return Options(clock="manual", start_time_ms=START_MS)


@pytest.fixture
def app(options: Options) -> web.Application:
    return create_app(options)


ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client(aiohttp_client: ClientFactory, app: web.Application) -> TestClient[Any, Any]:
    return await aiohttp_client(app)


class Aep:
    """Calls the AEP surface as a client would and checks every response against its schema."""

    def __init__(self, client: TestClient[Any, Any], org: str = ORG, sandbox: str = "prod"):
        self.client = client
        self.org = org
        self.sandbox = sandbox

    def headers(self, **extra: str) -> dict[str, str]:
        return aep_headers(self.org, self.sandbox, **extra)

    async def call(
        self, method: str, path: str, *, status: int, schema: str | None, json: Any = None, **kwargs: Any
    ) -> Any:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        response = await self.client.request(method, path, json=json, headers=headers, **kwargs)
        assert response.content_type == "application/json", await response.text()
        body = await response.json()
        assert response.status == status, body
        if schema is not None:
            assert_matches(schema, body)
        return body

    async def create_dataset(self, **fields: Any) -> str:
        body = {
            "name": "export target",
            "schemaRef": {"id": PROFILE_UNION, "contentType": "application/vnd.adobe.xed+json;version=1"},
            **fields,
        }
        created = await self.call(
            "POST",
            "/data/foundation/catalog/dataSets",
            json=body,
            status=201,
            schema="dataset.create.response",
        )
        return str(created[0].rsplit("/", 1)[1])

    async def create_job(
        self, dataset_id: str, *, headers: dict[str, str] | None = None, **fields: Any
    ) -> Any:
        body = {
            "destination": {"datasetId": dataset_id},
            "schema": {"name": "_xdm.context.profile"},
            **fields,
        }
        return await self.call(
            "POST",
            "/data/core/ups/export/jobs",
            json=body,
            status=200,
            schema="export-job.response",
            headers=headers or {},
        )

    async def get_job(self, job_id: int) -> Any:
        return await self.call(
            "GET", f"/data/core/ups/export/jobs/{job_id}", status=200, schema="export-job.response"
        )

    async def advance(self, seconds: float) -> None:
        response = await self.client.post("/_emulator/clock/advance", json={"seconds": seconds})
        assert response.status == 200


@pytest.fixture
def aep(client: TestClient[Any, Any]) -> Aep:
    return Aep(client)
