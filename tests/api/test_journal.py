"""The request journal: GET|DELETE /_emulator/requests, its filters, and what it never records."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from emulator.journal import MAX_BODY_CHARS, PAGE_MAX_BYTES, Journal, JournalEntry
from emulator.options import Options
from tests.conftest import ORG, OTHER_ORG, START_MS, Aep, assert_matches

JOBS = "/data/core/ups/export/jobs"


async def journal(client: TestClient[Any, Any], query: str = "") -> list[dict[str, Any]]:
    response = await client.get(f"/_emulator/requests{query}")
    body = await response.json()
    assert response.status == 200, body
    assert_matches("control.requests.response", body)
    return list(body["requests"])


async def some_traffic(client: TestClient[Any, Any]) -> tuple[Aep, Aep, Any]:
    """A dataset and a job in ORG/prod, a GET of it, a list in OTHER_ORG/dev."""
    aep, other = Aep(client), Aep(client, org=OTHER_ORG, sandbox="dev")
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-request-id": "req-1"})
    await aep.advance(2)
    await aep.get_job(job["id"])
    await other.call("GET", f"{JOBS}?limit=5", status=200, schema="export-job.list.response")
    return aep, other, job


async def test_the_journal_records_every_aep_request_oldest_first(client: TestClient[Any, Any]) -> None:
    _, _, job = await some_traffic(client)
    entries = await journal(client)
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/data/foundation/catalog/dataSets", 201),
        ("POST", JOBS, 200),
        ("GET", f"{JOBS}/{job['id']}", 200),
        ("GET", JOBS, 200),
    ]
    create = entries[1]
    assert create["tenant"] == {"org": ORG, "sandbox": "prod"}
    assert create["headers"]["x-request-id"] == "req-1"
    assert create["headers"]["x-gw-ims-org-id"] == ORG
    assert create["headers"]["authorization"] == "Bearer test-token"
    assert all(name == name.lower() for name in create["headers"])
    assert '"datasetId"' in create["body"]
    assert create["query"] == {}
    assert create["time"] == START_MS
    assert entries[2]["time"] == START_MS + 2000
    assert entries[2]["body"] == ""
    assert entries[3]["query"] == {"limit": "5"}
    assert entries[3]["tenant"] == {"org": OTHER_ORG, "sandbox": "dev"}


async def test_the_control_plane_is_never_journaled(client: TestClient[Any, Any]) -> None:
    await client.get("/_emulator/health")
    await client.post("/_emulator/clock/advance", json={"seconds": 1})
    await client.get("/_emulator/scenarios")
    await client.get("/_emulator/nope")
    await client.get("/_emulator/jobs?all=true")
    assert await journal(client) == []
    assert await journal(client) == []  # reading the journal is not journaled either


async def test_refused_requests_are_journaled_with_their_status(client: TestClient[Any, Any]) -> None:
    await client.get(JOBS)  # no headers at all: 401 at the gateway
    await client.get(f"{JOBS}/42", headers=Aep(client).headers())  # 404 from the service
    entries = await journal(client)
    assert [(e["path"], e["status"]) for e in entries] == [(JOBS, 401), (f"{JOBS}/42", 404)]
    assert entries[0]["tenant"] == {"org": None, "sandbox": None}
    assert entries[1]["tenant"] == {"org": ORG, "sandbox": "prod"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?method=GET", [("GET", "job"), ("GET", JOBS)]),
        ("?method=get", [("GET", "job"), ("GET", JOBS)]),
        ("?method=POST", [("POST", "/data/foundation/catalog/dataSets"), ("POST", JOBS)]),
        ("?method=DELETE", []),
        ("?path=/data/core/ups", []),  # exact, not a prefix
        ("?path=/data/core/ups/**", [("POST", JOBS), ("GET", "job"), ("GET", JOBS)]),
        (f"?path={JOBS}", [("POST", JOBS), ("GET", JOBS)]),
        (f"?path={JOBS}/*", [("GET", "job")]),
        ("?path=/data/*/ups/export/jobs", [("POST", JOBS), ("GET", JOBS)]),
        ("?path=/data/foundation/**", [("POST", "/data/foundation/catalog/dataSets")]),
        ("?path=/data/foundation/catalog/dataSet?", [("POST", "/data/foundation/catalog/dataSets")]),
        ("?path=/nowhere", []),
        ("?status=200", [("POST", JOBS), ("GET", "job"), ("GET", JOBS)]),
        (
            "?status=2xx",
            [("POST", "/data/foundation/catalog/dataSets"), ("POST", JOBS), ("GET", "job"), ("GET", JOBS)],
        ),
        ("?status=201", [("POST", "/data/foundation/catalog/dataSets")]),
        ("?status=4xx", []),
        (f"?since={START_MS + 1000}", [("GET", "job"), ("GET", JOBS)]),
        (f"?since={START_MS}&method=POST", [("POST", "/data/foundation/catalog/dataSets"), ("POST", JOBS)]),
        ("?job=job", [("POST", JOBS), ("GET", "job")]),
        ("?unmatched=true", []),
        ("?unmatched=false&method=GET", [("GET", "job"), ("GET", JOBS)]),
        (f"?org={ORG}", [("POST", "/data/foundation/catalog/dataSets"), ("POST", JOBS), ("GET", "job")]),
        (f"?org={OTHER_ORG}", [("GET", JOBS)]),
        ("?sandbox=dev", [("GET", JOBS)]),
        (f"?org={OTHER_ORG}&sandbox=prod", []),
        (f"?method=GET&org={ORG}&path={JOBS}/*", [("GET", "job")]),
    ],
)
async def test_filters(client: TestClient[Any, Any], query: str, expected: list[tuple[str, str]]) -> None:
    _, _, job = await some_traffic(client)
    job_path = f"{JOBS}/{job['id']}"
    query = query.replace("job=job", f"job={job['id']}")
    wanted = [(method, job_path if path == "job" else path) for method, path in expected]
    assert [(e["method"], e["path"]) for e in await journal(client, query)] == wanted


async def test_delete_clears_the_journal(client: TestClient[Any, Any]) -> None:
    aep, _, _ = await some_traffic(client)
    response = await client.delete("/_emulator/requests")
    body = await response.json()
    assert response.status == 200
    assert_matches("control.requests-cleared.response", body)
    assert body == {"cleared": True}
    assert await journal(client) == []
    await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
    assert [e["method"] for e in await journal(client)] == ["GET"]


def entry(number: int) -> JournalEntry:
    return JournalEntry("GET", URL(f"/data/{number}"), {}, "", 200, ORG, "prod", number)


def test_the_journal_keeps_only_its_newest_entries() -> None:
    kept = Journal(limit=3)
    for number in range(5):
        kept.record(entry(number))
    assert [e.time for e in kept.entries({})] == [2, 3, 4]
    kept.clear()
    assert kept.entries({}) == []


def test_an_entry_shows_its_tenant_as_an_object() -> None:
    shown = entry(7).to_json()
    assert shown["tenant"] == {"org": ORG, "sandbox": "prod"}
    assert "org" not in shown and "sandbox" not in shown
    assert_matches("control.requests.response", {"requests": [shown]})


def test_a_huge_body_is_kept_only_in_part() -> None:
    kept = Journal(limit=2)
    big = JournalEntry("POST", URL("/data/x"), {}, "x" * (MAX_BODY_CHARS + 10), 413, ORG, "prod", 0)
    kept.record(big)
    (shown,) = kept.entries({})
    assert shown.body == "x" * MAX_BODY_CHARS + "... [10 more characters]"
    small = JournalEntry("POST", URL("/data/x"), {}, "x" * MAX_BODY_CHARS, 200, ORG, "prod", 1)
    kept.record(small)
    assert kept.entries({})[-1] is small


# -- pages (issue 12, finding 6: 1,200 entries used to make one 1 GB answer) -------------------------------


class TestPages:
    @pytest.fixture
    def options(self) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, journal_limit=5000)

    async def test_the_journal_comes_in_pages_of_100_by_default(self, client: TestClient[Any, Any]) -> None:
        aep = Aep(client)
        for number in range(250):
            await client.get(f"{JOBS}/{number}", headers=aep.headers())
        first = await page(client)
        assert [e["path"] for e in first["requests"]] == [f"{JOBS}/{n}" for n in range(100)]
        assert first["page"] == {"start": 0, "limit": 100, "count": 250, "next": 100, "truncated": False}
        last = await page(client, "?start=200&limit=1000")
        assert [e["path"] for e in last["requests"]] == [f"{JOBS}/{n}" for n in range(200, 250)]
        assert last["page"]["next"] is None
        filtered = await page(client, f"?path={JOBS}/1**&limit=5&start=5")
        assert [e["path"] for e in filtered["requests"]] == [f"{JOBS}/{n}" for n in (14, 15, 16, 17, 18)]
        assert filtered["page"]["count"] == 111  # 1, 10-19, 100-199

    async def test_a_page_stops_at_its_byte_cap_and_says_so(self, client: TestClient[Any, Any]) -> None:
        aep = Aep(client)
        # 80 bodies of 120 KB in UTF-8 (each below MAX_BODY_CHARS): more than one page's byte cap
        big = json.dumps({"name": "x", "description": "\u00e9" * 60_000}, ensure_ascii=False).encode()
        for _ in range(80):
            await client.post("/data/foundation/catalog/dataSets", data=big, headers=aep.headers())
        response = await client.get("/_emulator/requests?limit=1000")
        raw = await response.read()
        assert len(raw) <= PAGE_MAX_BYTES + 1024
        assert b"\\u00e9" not in raw and "\u00e9".encode() in raw  # UTF-8, not \uXXXX escapes
        shown = json.loads(raw)
        assert_matches("control.requests.response", shown)
        got = len(shown["requests"])
        assert 0 < got < 80
        assert shown["page"] == {"start": 0, "limit": 1000, "count": 80, "next": got, "truncated": True}
        rest = await page(client, f"?limit=1000&start={got}")
        assert len(rest["requests"]) == 80 - got and rest["page"]["truncated"] is False

    @pytest.mark.parametrize("query", ["?limit=1001", "?limit=0", "?start=-1", "?limit=many"])
    async def test_bad_page_parameters_are_400(self, client: TestClient[Any, Any], query: str) -> None:
        response = await client.get(f"/_emulator/requests{query}")
        assert response.status == 400
        assert_matches("error.problem", await response.json())


async def page(client: TestClient[Any, Any], query: str = "") -> dict[str, Any]:
    response = await client.get(f"/_emulator/requests{query}")
    body = await response.json()
    assert response.status == 200, body
    assert_matches("control.requests.response", body)
    return dict(body)


# -- issue 15: what each entry records, the filters, HAR ----------------------------------------------------


async def test_an_entry_records_duration_job_scenario_fault_and_response(
    client: TestClient[Any, Any],
) -> None:
    aep = Aep(client)
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "flaky-gateway"})
    polls = [await client.get(f"{JOBS}/{job['id']}", headers=aep.headers()) for _ in range(3)]
    entries = await journal(client, f"?job={job['id']}")
    create, *gets = entries
    assert (create["method"], create["job"], create["scenario"], create["fault"]) == (
        "POST",
        str(job["id"]),
        "flaky-gateway",
        None,
    )
    assert [(e["status"], e["fault"]) for e in gets] == [
        (p.status, None if p.status == 200 else f"respond {p.status}") for p in polls
    ]
    assert any(e["fault"] for e in gets), "the scenario answers some polls with a fault"
    assert all(e["scenario"] == "flaky-gateway" for e in gets)
    assert all(isinstance(e["durationMs"], float | int) and e["durationMs"] >= 0 for e in entries)
    assert create["response"]["headers"]["content-type"].startswith("application/json")
    assert json.loads(create["response"]["body"])["id"] == job["id"]
    assert create["response"]["size"] == len(create["response"]["body"].encode())
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    assert gets[0]["requestId"] is None or gets[0]["status"] != 200


async def test_an_error_entry_carries_its_request_id(client: TestClient[Any, Any]) -> None:
    await client.get(f"{JOBS}/42", headers=Aep(client).headers(**{"x-request-id": "mine-1"}))
    await client.get(f"{JOBS}/43", headers=Aep(client).headers())
    first, second = await journal(client)
    assert first["requestId"] == "mine-1"
    assert second["requestId"] and second["requestId"] == second["response"]["headers"]["x-request-id"]
    assert first["job"] == "42"  # the job the request was about, even when it does not exist


@pytest.mark.parametrize(
    "query",
    ["?status=abc", "?status=600", "?since=yesterday", "?unmatched=yes", "?pth=/data", "?limit=0", "?limit="],
)
async def test_bad_filters_are_400_naming_the_parameter(client: TestClient[Any, Any], query: str) -> None:
    for endpoint in ("/_emulator/requests", "/_emulator/requests.har"):
        response = await client.get(f"{endpoint}{query}")
        body = await response.json()
        assert response.status == 400, body
        assert_matches("error.problem", body)
        assert query[1:].partition("=")[0] in body["detail"]


def test_path_globs() -> None:
    from emulator.journal import path_matcher

    job = path_matcher(f"{JOBS}/*")
    assert job(f"{JOBS}/12") and not job(JOBS) and not job(f"{JOBS}/") and not job(f"{JOBS}/12/x")
    under = path_matcher("/data/core/ups/**")
    assert under(JOBS) and under("/data/core/ups/") and not under("/data/core/upsx")
    assert path_matcher("/data/*/ups/export/jobs")(JOBS)
    assert path_matcher(JOBS)(JOBS) and not path_matcher(JOBS)(f"{JOBS}/")
    assert path_matcher("/a.b/[x]")("/a.b/[x]") and not path_matcher("/a.b")("/aXb")  # no regex leaks


async def test_the_journal_as_har(client: TestClient[Any, Any]) -> None:
    aep = Aep(client)
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    await client.get(f"{JOBS}/{job['id']}/", headers=aep.headers())  # a near miss
    await client.get(JOBS, headers=aep.headers(), params={"limit": "5"})
    response = await client.get("/_emulator/requests.har")
    assert response.status == 200
    har = await response.json()
    assert_matches("control.requests-har.response", har)
    log = har["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "aep-emulator"
    entries = log["entries"]
    assert [(e["request"]["method"], e["response"]["status"]) for e in entries] == [
        ("POST", 201),
        ("POST", 200),
        ("GET", 404),
        ("GET", 200),
    ]
    create = entries[1]
    assert create["request"]["url"] == f"{client.make_url(JOBS)}"
    assert json.loads(create["request"]["postData"]["text"])["destination"]["datasetId"] == dataset_id
    assert json.loads(create["response"]["content"]["text"])["id"] == job["id"]
    assert {"name": "x-gw-ims-org-id", "value": ORG} in create["request"]["headers"]
    assert create["startedDateTime"] == "2023-11-14T22:13:20.000Z"  # emulator time
    assert create["_emulator"]["job"] == str(job["id"]) and "comment" not in create
    assert entries[2]["comment"].startswith(f"no route for GET {JOBS}/{job['id']}/")
    assert entries[2]["_emulator"]["nearMiss"]["kind"] == "route"
    assert entries[3]["request"]["queryString"] == [{"name": "limit", "value": "5"}]
    only = await (await client.get("/_emulator/requests.har?unmatched=true")).json()
    assert [e["response"]["status"] for e in only["log"]["entries"]] == [404]
    paged = await (await client.get("/_emulator/requests.har?limit=1&start=1")).json()
    assert len(paged["log"]["entries"]) == 1
    assert "the next page starts at start=2" in paged["log"]["comment"]


async def test_a_har_cuts_large_bodies_and_says_so(client: TestClient[Any, Any]) -> None:
    from emulator.journal import MAX_RESPONSE_BYTES as MAX_RESPONSE_BODY_BYTES

    aep = Aep(client)
    dataset_id = await aep.create_dataset()
    for _ in range(60):
        await aep.create_job(dataset_id)
    await client.get(JOBS, headers=aep.headers(), params={"limit": "60"})
    har = await (await client.get("/_emulator/requests.har?method=GET")).json()
    content = har["log"]["entries"][0]["response"]["content"]
    assert content["size"] > MAX_RESPONSE_BODY_BYTES
    assert len(content["text"].encode()) <= MAX_RESPONSE_BODY_BYTES
    assert "first 16384 bytes" in content["comment"]


async def test_a_har_url_is_a_uri_whatever_the_path(client: TestClient[Any, Any]) -> None:
    await client.get("/data/caf\u00e9 x\\\x01", headers=Aep(client).headers())
    har = await (await client.get("/_emulator/requests.har")).json()
    (entry,) = har["log"]["entries"]
    assert entry["request"]["url"].endswith("/data/caf%C3%A9%20x%5C%01")
    assert_matches("control.requests-har.response", har)


async def test_a_start_past_any_journal_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.get("/_emulator/requests?start=51217651210458717023633408")
    assert response.status == 400
    assert "'start' must be at most 2147483647" in (await response.json())["detail"]
