"""AEP's API-gateway rules, in their order, on every AEP path; sandbox, Accept and request-id handling."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.conftest import ORG, Aep, aep_headers, assert_matches

JOBS = "/data/core/ups/export/jobs"
DATASETS = "/data/foundation/catalog/dataSets"

# Every kind of AEP path: collection, item, unknown item, unsupported method, unknown service.
AEP_REQUESTS = [
    ("GET", JOBS),
    ("GET", f"{JOBS}/"),
    ("POST", JOBS),
    ("GET", f"{JOBS}/1"),
    ("DELETE", f"{JOBS}/1"),
    ("PUT", f"{JOBS}/1"),
    ("GET", DATASETS),
    ("POST", DATASETS),
    ("GET", f"{DATASETS}/5c8c3c555033b814b69f947f"),
    ("GET", "/data/foundation/catalog/batches"),
    ("GET", "/data/no/such/service"),
]

MISSING_TOKEN = {"error_code": "403010", "message": "Oauth token is missing."}
INVALID_TOKEN = {"error_code": "401013", "message": "Oauth token is not valid"}
MISSING_API_KEY = {"error_code": "403000", "message": "Api Key is required"}
MISSING_ORG = {"error_code": "400003", "message": "Missing header"}
BAD_CONTENT_TYPE = {
    "type": "/placeholder/type/uri",
    "status": 400,
    "title": "BadRequestError",
    "detail": "A valid content-type must be specified",
}


def without(*names: str, **replace: str) -> dict[str, str]:
    headers = {k: v for k, v in aep_headers().items() if k not in names}
    headers.update({k.replace("_", "-"): v for k, v in replace.items()})
    return headers


async def send(
    client: TestClient[Any, Any], method: str, path: str, headers: dict[str, str], **kwargs: Any
) -> tuple[ClientResponse, Any]:
    response = await client.request(method, path, headers=headers, **kwargs)
    assert response.content_type == "application/json", await response.text()
    return response, await response.json()


@pytest.mark.parametrize(("method", "path"), AEP_REQUESTS)
async def test_missing_authorization_is_401_403010(
    client: TestClient[Any, Any], method: str, path: str
) -> None:
    response, body = await send(client, method, path, without("Authorization"), json={})
    assert response.status == 401
    assert body == MISSING_TOKEN
    assert_matches("error.gateway", body)


@pytest.mark.parametrize(("method", "path"), AEP_REQUESTS)
@pytest.mark.parametrize("authorization", ["", "Bearer", "Bearer    ", "Basic dXNlcjpwYXNz", "test-token"])
async def test_non_bearer_or_empty_token_is_401_401013(
    client: TestClient[Any, Any], method: str, path: str, authorization: str
) -> None:
    headers = without(Authorization=authorization)
    response, body = await send(client, method, path, headers, json={})
    assert response.status == 401
    assert body == INVALID_TOKEN
    assert_matches("error.gateway", body)


@pytest.mark.parametrize(("method", "path"), AEP_REQUESTS)
@pytest.mark.parametrize("api_key", [None, ""])
async def test_missing_api_key_is_403_403000(
    client: TestClient[Any, Any], method: str, path: str, api_key: str | None
) -> None:
    headers = without("x-api-key") if api_key is None else without(x_api_key=api_key)
    response, body = await send(client, method, path, headers, json={})
    assert response.status == 403
    assert body == MISSING_API_KEY
    assert_matches("error.gateway", body)


@pytest.mark.parametrize(("method", "path"), AEP_REQUESTS)
@pytest.mark.parametrize("org", [None, ""])
async def test_missing_org_is_400_400003(
    client: TestClient[Any, Any], method: str, path: str, org: str | None
) -> None:
    headers = without("x-gw-ims-org-id") if org is None else without(x_gw_ims_org_id=org)
    response, body = await send(client, method, path, headers, json={})
    assert response.status == 400
    assert body == MISSING_ORG
    assert_matches("error.gateway", body)


@pytest.mark.parametrize(
    ("headers", "status", "expected"),
    [
        # Each request also breaks every later rule: only the first broken rule answers.
        ({"Content-Type": "text/plain"}, 401, MISSING_TOKEN),
        ({"Authorization": "Basic x", "Content-Type": "text/plain"}, 401, INVALID_TOKEN),
        ({"Authorization": "Bearer t", "Content-Type": "text/plain"}, 403, MISSING_API_KEY),
        ({"Authorization": "Bearer t", "x-api-key": "k", "Content-Type": "text/plain"}, 400, MISSING_ORG),
        (
            {
                "Authorization": "Bearer t",
                "x-api-key": "k",
                "x-gw-ims-org-id": ORG,
                "Content-Type": "text/plain",
            },
            400,
            BAD_CONTENT_TYPE,
        ),
    ],
)
@pytest.mark.parametrize("path", [JOBS, DATASETS])
async def test_rules_apply_in_order(
    client: TestClient[Any, Any], path: str, headers: dict[str, str], status: int, expected: dict[str, Any]
) -> None:
    response, body = await send(client, "POST", path, headers, data=b"{}")
    assert response.status == status
    assert body == expected
    assert_matches("error.problem" if "detail" in expected else "error.gateway", body)


@pytest.mark.parametrize("path", [JOBS, DATASETS])
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/octet-stream", "application/xml"],
)
async def test_post_without_json_content_type_is_400_problem(
    client: TestClient[Any, Any], path: str, content_type: str | None
) -> None:
    headers = without("Content-Type")
    skip: list[str] = []
    if content_type is None:
        skip = ["Content-Type"]
    else:
        headers["Content-Type"] = content_type
    response, body = await send(client, "POST", path, headers, data=b'{"name": "x"}', skip_auto_headers=skip)
    assert response.status == 400
    # The gateway's shape even on the UPS path, where services answer in the UPS envelope.
    assert body == BAD_CONTENT_TYPE
    assert_matches("error.problem", body)


async def test_json_content_type_with_parameters_is_accepted(client: TestClient[Any, Any]) -> None:
    headers = without(Content_Type="application/json; charset=utf-8")
    response, body = await send(client, "POST", DATASETS, headers, data=b'{"name": "x"}')
    assert response.status == 201, body
    assert_matches("dataset.create.response", body)


@pytest.mark.parametrize("authorization", ["Bearer abc", "bearer abc", "BEARER abc", "Bearer  abc "])
async def test_any_non_empty_bearer_token_is_accepted_in_open_mode(
    client: TestClient[Any, Any], authorization: str
) -> None:
    response, body = await send(client, "GET", JOBS, without(Authorization=authorization))
    assert response.status == 200, body
    assert_matches("export-job.list.response", body)


async def test_control_plane_skips_the_gateway(client: TestClient[Any, Any]) -> None:
    response, body = await send(client, "GET", "/_emulator/health", {})
    assert response.status == 200
    assert_matches("control.health.response", body)


async def test_missing_sandbox_means_prod(aep: Aep) -> None:
    created = await aep.call(
        "POST",
        DATASETS,
        json={"name": "no sandbox"},
        status=201,
        schema="dataset.create.response",
        headers={"x-sandbox-name": ""},
    )
    dataset_id = created[0].rsplit("/", 1)[1]
    response, other = await send(
        aep.client, "POST", DATASETS, without("x-sandbox-name"), json={"name": "no header"}
    )
    assert response.status == 201
    assert_matches("dataset.create.response", other)
    other_id = other[0].rsplit("/", 1)[1]

    in_prod = await aep.call("GET", DATASETS, status=200, schema="dataset.map.response")
    assert set(in_prod) == {dataset_id, other_id}
    assert {d["sandboxName"] for d in in_prod.values()} == {"prod"}
    response, no_header = await send(aep.client, "GET", DATASETS, without("x-sandbox-name"))
    assert response.status == 200
    assert no_header == in_prod
    in_dev = await aep.call(
        "GET", DATASETS, status=200, schema="dataset.map.response", headers={"x-sandbox-name": "dev"}
    )
    assert in_dev == {}


@pytest.mark.parametrize(
    "accept",
    ["application/vnd.adobe.xdm+json", "application/json", "*/*", "text/html", "application/xml", ""],
)
async def test_any_accept_header_is_accepted(aep: Aep, accept: str) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"Accept": accept})
    await aep.call("GET", JOBS, status=200, schema="export-job.list.response", headers={"Accept": accept})
    await aep.call(
        "GET", f"{JOBS}/{job['id']}", status=200, schema="export-job.response", headers={"Accept": accept}
    )
    await aep.call(
        "GET",
        f"{DATASETS}/{dataset_id}",
        status=200,
        schema="dataset.map.response",
        headers={"Accept": accept},
    )


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
async def test_content_type_on_bodiless_get_and_delete_is_accepted(aep: Aep, content_type: str) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    extra = {"Content-Type": content_type}
    await aep.call("GET", JOBS, status=200, schema="export-job.list.response", headers=extra)
    await aep.call("GET", f"{JOBS}/{job['id']}", status=200, schema="export-job.response", headers=extra)
    await aep.call("GET", DATASETS, status=200, schema="dataset.map.response", headers=extra)
    cancelled = await aep.call(
        "DELETE", f"{JOBS}/{job['id']}", status=200, schema="export-job.cancel.response", headers=extra
    )
    assert cancelled["status"] is True


# (method, path, headers, body, status, schema): one request for each kind of error the core serves.
ERRORS: list[tuple[str, str, dict[str, str], bytes, int, str]] = [
    ("GET", JOBS, without("Authorization"), b"", 401, "error.gateway"),
    ("GET", JOBS, without(Authorization="Basic x"), b"", 401, "error.gateway"),
    ("GET", DATASETS, without("x-api-key"), b"", 403, "error.gateway"),
    ("GET", DATASETS, without("x-gw-ims-org-id"), b"", 400, "error.gateway"),
    ("POST", JOBS, without(Content_Type="text/plain"), b"{}", 400, "error.problem"),
    ("GET", f"{JOBS}/424242", aep_headers(), b"", 404, "error.ups"),
    ("PUT", f"{JOBS}/1", aep_headers(), b"{}", 405, "error.ups"),
    ("POST", JOBS, aep_headers(), b'{"destination": 1}', 400, "error.ups"),
    ("POST", JOBS, aep_headers(), b"x" * (1024 * 1024 + 1), 413, "error.ups"),
    ("GET", f"{DATASETS}/unknown", aep_headers(), b"", 404, "error.problem"),
    ("POST", DATASETS, aep_headers(), b"[", 400, "error.problem"),
    ("GET", "/data/no/such/service", aep_headers(), b"", 404, "error.problem"),
    ("GET", "/_emulator/no-such-thing", {}, b"", 404, "error.problem"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "schema"), ERRORS)
async def test_errors_echo_the_request_id(
    client: TestClient[Any, Any],
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    schema: str,
) -> None:
    request_id = f"test-{uuid.uuid4()}"
    response, error = await send(client, method, path, {**headers, "x-request-id": request_id}, data=body)
    assert response.status == status, error
    assert_matches(schema, error)
    assert response.headers["x-request-id"] == request_id
    if schema == "error.ups":
        assert error["requestId"] == request_id
        assert error["status"] == status


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "schema"), ERRORS)
async def test_errors_get_a_generated_request_id(
    client: TestClient[Any, Any],
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    schema: str,
) -> None:
    seen = set()
    for _ in range(2):
        response, error = await send(client, method, path, headers, data=body)
        assert response.status == status, error
        assert_matches(schema, error)
        request_id = response.headers["x-request-id"]
        assert request_id
        if schema == "error.ups":
            assert error["requestId"] == request_id
        seen.add(request_id)
    assert len(seen) == 2, "each request gets its own id"
