"""Near misses: AEP's exact answer plus `x-emulator-hint`, the report in the journal, one WARNING line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator import hints
from emulator.hints import route_miss
from emulator.options import Options
from tests.conftest import ORG, START_MS, Aep, aep_headers, assert_matches

JOBS = "/data/core/ups/export/jobs"
HINT = "x-emulator-hint"
JOB_BODY = {"destination": {"datasetId": "x"}, "schema": {"name": "_xdm.context.profile"}}


async def near_misses(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    response = await client.get("/_emulator/requests?unmatched=true")
    body = await response.json()
    assert_matches("control.requests.response", body)
    return list(body["requests"])


@pytest.mark.parametrize(
    ("method", "path", "status", "expected"),
    [
        # AEP's service roots mixed up: the closest route is the one under the right root
        (
            "GET",
            "/data/foundation/export/jobs",
            404,
            "'/data/foundation/export' should be '/data/core/ups/export'",
        ),
        (
            "GET",
            "/data/core/ups/export/batches/b1/files",
            404,
            "GET /data/foundation/export/batches/{batch_id}/files ('/data/core/ups/export' should be",
        ),
        ("POST", f"{JOBS}/", 405, "POST /data/core/ups/export/jobs (trailing slash: the route has none)"),
        ("GET", "/data/core/ups/export/Jobs/12", 404, "'Jobs' should be 'jobs' (paths are case-sensitive)"),
        ("GET", "/data/core/ups/exports/jobs/12", 404, "'exports' should be 'export'"),
        (
            "PATCH",
            f"{JOBS}/12",
            405,
            "PATCH is not served at /data/core/ups/export/jobs/12 (it serves DELETE, GET)",
        ),
        ("GET", "/data/foundation/schemaregistry/tenant/schemas", 404, "none is close; the emulator serves"),
    ],
)
async def test_a_request_no_route_serves_names_the_closest_route(
    client: TestClient[Any, Any], method: str, path: str, status: int, expected: str
) -> None:
    body = {} if method in ("POST", "PATCH") else None
    response = await client.request(method, path, headers=aep_headers(), json=body)
    assert response.status == status
    hint = response.headers[HINT]
    assert expected in hint, hint
    assert hint.isascii() and "\n" not in hint
    (entry,) = await near_misses(client)
    assert entry["hint"] == hint
    assert entry["nearMiss"]["kind"] in ("route", "method")


async def test_the_answer_stays_aeps_exactly(client: TestClient[Any, Any]) -> None:
    """The hint is a header more; status and body are what they are without it."""
    response = await client.get(JOBS, headers={"x-request-id": "r1"})
    assert response.status == 401
    assert await response.json() == {"error_code": "403010", "message": "Oauth token is missing."}
    assert response.headers[HINT].startswith(
        "GET /data/core/ups/export/jobs: header Authorization is missing"
    )
    missing = await client.get(f"{JOBS}/12/x", headers=aep_headers(**{"x-request-id": "r2"}))
    assert await missing.json() == {
        "type": "https://ns.adobe.com/aep/errors/UPAPI-113000-404",
        "title": "NotFoundError",
        "status": 404,
        "requestId": "r2",
        "errors": {"404": [{"code": "UPAPI-113000-404", "message": f"No resource at {JOBS}/12/x"}]},
    }


@pytest.mark.parametrize(
    ("change", "status", "expected"),
    [
        ({"Authorization": None}, 401, "header Authorization is missing"),
        ({"Authorization": "Basic abc"}, 401, "Authorization must be 'Bearer <token>', got scheme 'Basic'"),
        ({"Authorization": "Bearer "}, 401, "Authorization has no token after 'Bearer'"),
        (
            {"x-api-key": None, "x-api_key": "k"},
            403,
            "header x-api-key is missing or empty: send your API client id as x-api-key "
            "(you sent 'x-api_key'",
        ),
        (
            {"x-gw-ims-org-id": None, "x-gw-ims-orgid": ORG},
            400,
            "(you sent 'x-gw-ims-orgid': did you mean x-gw-ims-org-id?)",
        ),
        (
            {"Content-Type": "text/plain"},
            400,
            "POST needs 'Content-Type: application/json', got 'text/plain'",
        ),
    ],
)
async def test_a_gateway_refusal_names_the_header(
    client: TestClient[Any, Any], change: dict[str, str | None], status: int, expected: str
) -> None:
    headers = {k: v for k, v in {**aep_headers(), **change}.items() if v is not None}
    response = await client.post(JOBS, data=b"{}", headers=headers)
    assert response.status == status
    assert expected in response.headers[HINT], response.headers[HINT]
    (entry,) = await near_misses(client)
    assert entry["nearMiss"]["kind"] == "gateway"
    assert entry["nearMiss"]["closest"][0]["route"] == f"POST {JOBS}"


async def test_strict_auth_says_whose_token_it_is(aiohttp_client: Any) -> None:
    from emulator.app import create_app

    client = await aiohttp_client(create_app(Options(clock="manual", auth="strict")))
    token = await client.post(
        "/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": "mine",
            "client_secret": "s",
            "scope": "openid",
        },
    )
    headers = aep_headers(
        Authorization=f"Bearer {(await token.json())['access_token']}", **{"x-api-key": "other"}
    )
    response = await client.get(JOBS, headers=headers)
    assert response.status == 403
    assert (
        "x-api-key 'other' is not the client id the token was minted for ('mine')" in response.headers[HINT]
    )
    stale = await client.get(JOBS, headers=aep_headers(Authorization="Bearer made-up"))
    assert "not one this emulator's IMS minted" in stale.headers[HINT]


async def test_a_validation_failure_names_the_path_and_the_field_meant(client: TestClient[Any, Any]) -> None:
    aep = Aep(client)
    misspelt = {"destination": {"dataSetId": "x"}, "schema": {"name": "_xdm.context.profile"}}
    response = await client.post(JOBS, json=misspelt, headers=aep.headers())
    assert response.status == 400
    assert response.headers[HINT] == (
        "POST /data/core/ups/export/jobs: $.destination: 'datasetId' is a required property "
        "(rule: required); you sent 'dataSetId': did you mean 'datasetId'?"
    )
    wrong_type = {"destination": {"datasetId": "x", "segmentPerBatch": "yes"}, "schema": {"name": "p"}}
    response = await client.post(JOBS, json=wrong_type, headers=aep.headers())
    assert (
        "$.destination.segmentPerBatch: 'yes' is not of type 'boolean' (rule: type)" in response.headers[HINT]
    )
    unknown = await client.get("/data/foundation/catalog/batches?dataSetId=x", headers=aep.headers())
    assert unknown.status == 400  # Catalog refuses a filter it does not know: the hint is its reason
    assert "Query parameter 'dataSetId' is not a filter of batches" in unknown.headers[HINT]
    assert "ignored" not in unknown.headers[HINT]
    query = await client.get(f"{JOBS}?limit=abc", headers=aep.headers())
    assert query.status == 400
    assert "Query parameter 'limit'" in query.headers[HINT]
    kinds = [entry["nearMiss"]["kind"] for entry in await near_misses(client)]
    assert kinds == ["validation"] * 4


async def test_a_served_request_with_an_ignored_parameter_is_a_near_miss(
    client: TestClient[Any, Any],
) -> None:
    aep = Aep(client)
    response = await client.get(f"{JOBS}?limt=5", headers=aep.headers())
    assert response.status == 200
    assert response.headers[HINT] == (
        "GET /data/core/ups/export/jobs: query parameter 'limt' is not read here and was ignored: "
        "did you mean 'limit'?"
    )
    response = await client.get(f"{JOBS}?color=red", headers=aep.headers())
    assert response.headers[HINT].startswith(
        "GET /data/core/ups/export/jobs: query parameter 'color' is not read here and was ignored (it reads: "
    )
    sandbox = aep_headers(sandbox=None, **{"x-sandbox": "dev"})
    response = await client.get(JOBS, headers=sandbox)
    assert response.status == 200
    assert "header 'x-sandbox' is not read: the sandbox is named by x-sandbox-name" in response.headers[HINT]
    assert [e["nearMiss"]["kind"] for e in await near_misses(client)] == ["query", "query", "header"]


async def test_the_happy_path_has_no_hint(client: TestClient[Any, Any]) -> None:
    aep = Aep(client)
    dataset_id = await aep.create_dataset()
    response = await client.post(
        JOBS, json={**JOB_BODY, "destination": {"datasetId": dataset_id}}, headers=aep.headers()
    )
    assert response.status == 200 and HINT not in response.headers
    listed = await client.get(f"{JOBS}?limit=5&sort=updateTime:desc", headers=aep.headers())
    assert listed.status == 200 and HINT not in listed.headers
    unknown_job = await client.get(f"{JOBS}/999", headers=aep.headers())
    assert unknown_job.status == 404 and HINT not in unknown_job.headers  # a route, just no such job
    assert await near_misses(client) == []


async def test_one_warning_line_per_near_miss(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="emulator.requests")
    await client.get("/data/core/ups/export/job", headers=aep_headers())
    await client.get(JOBS, headers=aep_headers())  # served as asked: no WARNING
    warnings = [r for r in caplog.records if r.name == "emulator.requests" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage().startswith("GET /data/core/ups/export/job 404: no route for GET ")
    assert warnings[0].aep_request["hint"].startswith("no route for GET /data/core/ups/export/job")  # type: ignore[attr-defined]


async def test_the_control_plane_gets_hints_too(client: TestClient[Any, Any]) -> None:
    response = await client.get("/_emulator/request")
    assert response.status == 404
    assert response.headers[HINT].startswith(
        "no route for GET /_emulator/request; closest: "
        "GET /_emulator/requests ('request' should be 'requests'"
    )
    assert await near_misses(client) == []  # never journaled


async def test_the_journal_keeps_the_ranked_report(client: TestClient[Any, Any]) -> None:
    await client.post(f"{JOBS}/", json={}, headers=aep_headers())
    (entry,) = await near_misses(client)
    assert entry["time"] == START_MS
    assert entry["nearMiss"]["closest"][:2] == [
        {"route": f"POST {JOBS}", "differences": ["trailing slash: the route has none"]},
        {"route": f"GET {JOBS}/", "differences": ["method POST should be GET"]},
    ]


def test_hints_are_one_printable_ascii_line() -> None:
    line = hints.one_line("caf\u00e9\r\nx-injected: 1 " + "y" * 1000)
    assert line.isascii() and line.isprintable() and len(line) == hints.MAX_HINT_CHARS
    assert "\\xe9" in line and "\\x0d\\x0a" in line


def test_route_ranking_is_pure() -> None:
    routes = (("GET", "/a/{id}"), ("GET", "/a/b/c"), ("POST", "/a/b"))
    miss = route_miss("GET", "/a/b", routes)
    assert miss.closest[0].route == "GET /a/{id}"
    assert route_miss("POST", "/a/b/", routes).closest[0].route == "POST /a/b"
