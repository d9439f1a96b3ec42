"""The control plane, /_emulator/*: health, reset, clock, scenarios, jobs and force.

Every control call here is made WITHOUT AEP headers: the control plane never asks for them.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator import __version__
from emulator.app import create_app
from emulator.options import Options
from tests.conftest import OTHER_ORG, START_MS, Aep, ClientFactory, assert_matches

JOBS = "/data/core/ups/export/jobs"
BUNDLED = {"success", "failure", "stuck", "slow", "partial-errors", "empty", "flaky-gateway"}
SEGMENT_BUNDLED = {"segment-success", "segment-failure", "segment-stuck", "segment-slow"}

UPLOADED = """
name: uploaded
description: polls only, fails on the third
steps:
  - status: NEW
  - status: PROCESSING
    after: {polls: 1}
  - status: FAILED
    after: {polls: 2}
    errors: [{code: "42", msg: uploaded failure, callStack: here}]
"""


async def control(
    client: TestClient[Any, Any],
    method: str,
    path: str,
    *,
    status: int = 200,
    schema: str,
    **kwargs: Any,
) -> Any:
    """A control-plane call with no AEP headers at all; the body is checked against `schema`."""
    response = await client.request(method, f"/_emulator{path}", **kwargs)
    assert response.content_type == "application/json", await response.text()
    body = await response.json()
    assert response.status == status, body
    assert_matches(schema, body)
    if status >= 400:
        assert response.headers["x-request-id"]
    return body


async def problem(client: TestClient[Any, Any], method: str, path: str, status: int, **kwargs: Any) -> str:
    body = await control(client, method, path, status=status, schema="error.problem", **kwargs)
    assert body["status"] == status
    return str(body["detail"])


async def new_job(aep: Aep, **headers: str) -> Any:
    dataset_id = await aep.create_dataset()
    return await aep.create_job(dataset_id, headers=headers)


async def jobs_of(client: TestClient[Any, Any], query: str) -> list[Any]:
    body = await control(client, "GET", f"/jobs?{query}", schema="control.jobs.response")
    return list(body["jobs"])


async def status_of(client: TestClient[Any, Any], job_id: int) -> str:
    """A job's status seen by the control plane (which never counts a poll)."""
    for entry in await jobs_of(client, "all=true"):
        if entry["job"]["id"] == job_id:
            return str(entry["job"]["status"])
    raise AssertionError(f"job {job_id} not found")


# -- health ---------------------------------------------------------------------------------------


async def test_health(client: TestClient[Any, Any]) -> None:
    body = await control(client, "GET", "/health", schema="control.health.response")
    assert body == {"status": "ok", "version": __version__}


async def test_control_ignores_aep_headers_even_invalid_ones(client: TestClient[Any, Any]) -> None:
    await control(
        client, "GET", "/health", schema="control.health.response", headers={"Authorization": "Basic nope"}
    )


async def test_unknown_control_path_is_a_json_404(client: TestClient[Any, Any]) -> None:
    assert "/_emulator/nope" in await problem(client, "GET", "/nope", 404)


async def test_unsupported_method_on_a_control_path_is_a_405_with_allow(client: TestClient[Any, Any]) -> None:
    response = await client.put("/_emulator/clock")
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
    assert_matches("error.problem", await response.json())


# -- clock ----------------------------------------------------------------------------------------


async def test_clock_starts_manual_at_the_start_instant(client: TestClient[Any, Any]) -> None:
    body = await control(client, "GET", "/clock", schema="control.clock.response")
    assert body == {"mode": "manual", "now": START_MS, "speed": 1.0}


async def test_clock_advance_returns_the_new_now(client: TestClient[Any, Any]) -> None:
    body = await control(
        client, "POST", "/clock/advance", json={"seconds": 90.5}, schema="control.clock.response"
    )
    assert body["now"] == START_MS + 90_500
    body = await control(
        client, "POST", "/clock/advance", json={"seconds": 0}, schema="control.clock.response"
    )
    assert body["now"] == START_MS + 90_500
    assert (await control(client, "GET", "/clock", schema="control.clock.response"))[
        "now"
    ] == START_MS + 90_500


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "'seconds' is a required property"),
        ({"seconds": -1}, "$.seconds"),
        ({"seconds": "60"}, "$.seconds"),
        ({"seconds": 1, "minutes": 1}, "minutes"),
        ([60], "is not of type 'object'"),
        (b"", "empty"),
        (b"{seconds: 1}", "not valid JSON"),
        (b'{"seconds": NaN}', "NaN"),
        (b'{"seconds": Infinity}', "Infinity"),
        (b'{"seconds": 1e400}', "1e400"),
    ],
)
async def test_clock_advance_rejects_bad_bodies(client: TestClient[Any, Any], body: Any, needle: str) -> None:
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    assert needle in await problem(client, "POST", "/clock/advance", 400, **kwargs)
    assert (await control(client, "GET", "/clock", schema="control.clock.response"))["now"] == START_MS


async def test_a_real_clock_reports_its_mode_and_speed(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(Options(clock="real", speed=60, start_time_ms=START_MS)))
    body = await control(client, "GET", "/clock", schema="control.clock.response")
    assert (body["mode"], body["speed"]) == ("real", 60)
    assert body["now"] >= START_MS


# -- scenarios ------------------------------------------------------------------------------------


async def test_scenarios_lists_the_bundled_ones_and_the_default(client: TestClient[Any, Any]) -> None:
    body = await control(client, "GET", "/scenarios", schema="control.scenarios.response")
    assert body["default"] == "success"
    assert {s["name"] for s in body["scenarios"]} == BUNDLED | SEGMENT_BUNDLED
    assert body["queued"] == []
    assert all(s["description"] and s["source"].endswith(f"{s['name']}.yaml") for s in body["scenarios"])


async def test_upload_yaml_then_use_it_by_header(client: TestClient[Any, Any], aep: Aep) -> None:
    added = await control(
        client,
        "POST",
        "/scenarios",
        data=UPLOADED,
        headers={"Content-Type": "application/yaml"},
        status=201,
        schema="control.scenario-added.response",
    )
    assert added == {
        "name": "uploaded",
        "description": "polls only, fails on the third",
        "source": "upload",
        "kind": "export",
    }
    listed = await control(client, "GET", "/scenarios", schema="control.scenarios.response")
    assert "uploaded" in {s["name"] for s in listed["scenarios"]}
    job = await new_job(aep, **{"x-emulator-scenario": "uploaded"})
    statuses = [(await aep.get_job(job["id"]))["status"] for _ in range(3)]
    assert statuses == ["PROCESSING", "PROCESSING", "FAILED"]
    assert (await aep.get_job(job["id"]))["errors"] == [
        {"code": "42", "msg": "uploaded failure", "callStack": "here"}
    ]


async def test_upload_json(client: TestClient[Any, Any], aep: Aep) -> None:
    document = {
        "name": "instant",
        "steps": [{"status": "NEW"}, {"status": "SUCCEEDED", "after": {"seconds": 0}}],
    }
    added = await control(
        client, "POST", "/scenarios", json=document, status=201, schema="control.scenario-added.response"
    )
    assert added["name"] == "instant"
    job = await new_job(aep, **{"x-emulator-scenario": "instant"})
    # The create response shows the first step, as AEP's does; the 0-second step shows from the first read.
    assert job["status"] == "NEW"
    assert await status_of(client, job["id"]) == "SUCCEEDED"
    shown = await aep.get_job(job["id"])
    assert (shown["status"], shown["updateTime"]) == ("SUCCEEDED", shown["creationTime"])


async def test_an_upload_replaces_a_scenario_of_the_same_name(client: TestClient[Any, Any], aep: Aep) -> None:
    document = {"name": "success", "description": "mine", "steps": [{"status": "PROCESSING"}]}
    await control(
        client, "POST", "/scenarios", json=document, status=201, schema="control.scenario-added.response"
    )
    job = await new_job(aep)
    assert job["status"] == "PROCESSING"
    listed = await control(client, "GET", "/scenarios", schema="control.scenarios.response")
    assert [s["description"] for s in listed["scenarios"] if s["name"] == "success"] == ["mine"]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (UPLOADED.replace("polls: 2", "polls: 0"), ["upload: steps[2].after.polls:", "minimum of 1"]),
        (UPLOADED.replace("description", "descripton"), ["upload: descripton:", "unknown key"]),
        (UPLOADED.replace("name: uploaded\n", ""), ["upload: name:", "needs a name"]),
        ("steps: [\n", ["not valid YAML", "line 2"]),
        ("", ["<document>", "is not of type 'object'"]),
        ('{"name": "j", "steps": []}', ["upload: steps:", "non-empty"]),
    ],
)
async def test_an_invalid_upload_is_a_400_with_path_and_reason(
    client: TestClient[Any, Any], text: str, needles: list[str]
) -> None:
    detail = await problem(client, "POST", "/scenarios", 400, data=text)
    for needle in needles:
        assert needle in detail
    listed = await control(client, "GET", "/scenarios", schema="control.scenarios.response")
    assert {s["name"] for s in listed["scenarios"]} == BUNDLED | SEGMENT_BUNDLED


async def test_an_upload_that_is_not_utf8_is_a_400(client: TestClient[Any, Any]) -> None:
    assert "UTF-8" in await problem(client, "POST", "/scenarios", 400, data=b"name: caf\xe9")


async def test_an_oversized_upload_is_a_413(client: TestClient[Any, Any]) -> None:
    text = "description: " + "x" * (300 * 1024) + "\nsteps: [{status: NEW}]\nname: big\n"
    await problem(client, "POST", "/scenarios", 413, data=text)


async def test_set_the_default_scenario(client: TestClient[Any, Any], aep: Aep) -> None:
    body = await control(
        client,
        "PUT",
        "/scenarios/default",
        json={"name": "stuck"},
        schema="control.scenario-default.response",
    )
    assert body == {"default": "stuck", "kind": "export"}
    listed = await control(client, "GET", "/scenarios", schema="control.scenarios.response")
    assert listed["default"] == "stuck"
    job = await new_job(aep)
    for _ in range(5):
        await aep.get_job(job["id"])
    assert (await aep.get_job(job["id"]))["status"] == "PROCESSING"


async def test_an_unknown_default_is_a_400_naming_the_known_ones(client: TestClient[Any, Any]) -> None:
    detail = await problem(client, "PUT", "/scenarios/default", 400, json={"name": "nope"})
    assert "'nope'" in detail
    assert "empty, failure, flaky-gateway, partial-errors, segment-failure, segment-slow, " in detail
    assert (await control(client, "GET", "/scenarios", schema="control.scenarios.response"))[
        "default"
    ] == "success"


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "stuck", "extra": 1}, {"name": 3}])
async def test_bad_default_bodies(client: TestClient[Any, Any], body: Any) -> None:
    await problem(client, "PUT", "/scenarios/default", 400, json=body)


async def test_queue_next_with_count(client: TestClient[Any, Any], aep: Aep) -> None:
    body = await control(
        client,
        "POST",
        "/scenarios/next",
        json={"name": "failure", "count": 2},
        schema="control.scenario-queue.response",
    )
    assert body == {"queued": ["failure", "failure"]}
    body = await control(
        client, "POST", "/scenarios/next", json={"name": "stuck"}, schema="control.scenario-queue.response"
    )
    assert body == {"queued": ["failure", "failure", "stuck"]}
    dataset_id = await aep.create_dataset()
    ids = [(await aep.create_job(dataset_id))["id"] for _ in range(4)]
    scenarios = {e["job"]["id"]: e["scenario"] for e in await jobs_of(client, "all=true")}
    assert [scenarios[i] for i in ids] == ["failure", "failure", "stuck", "success"]
    assert (await control(client, "GET", "/scenarios", schema="control.scenarios.response"))["queued"] == []


async def test_a_queued_scenario_that_overrides_the_header_says_so(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    await control(
        client, "POST", "/scenarios/next", json={"name": "failure"}, schema="control.scenario-queue.response"
    )
    dataset_id = await aep.create_dataset()
    body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
    jobs = "/data/core/ups/export/jobs"
    asked = aep.headers(**{"x-emulator-scenario": "stuck"})
    overridden = await client.post(jobs, json=body, headers=asked)
    assert overridden.status == 200
    assert overridden.headers["x-emulator-scenario-applied"] == "failure"
    honoured = await client.post(jobs, json=body, headers=asked)
    assert honoured.headers["x-emulator-scenario-applied"] == "stuck"
    plain = await client.post(jobs, json=body, headers=aep.headers())
    assert "x-emulator-scenario-applied" not in plain.headers
    journal = await control(
        client, "GET", "/requests?method=POST&path=/data/core/ups/**", schema="control.requests.response"
    )
    notes = [entry["note"] for entry in journal["requests"]]
    assert notes[0] == (
        "the queued scenario 'failure' applied instead of the requested 'stuck' (x-emulator-scenario)"
    )
    assert notes[1:] == [None, None]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "nope"}, 400),
        ({"name": "stuck", "count": 0}, 400),
        ({"count": 1}, 400),
        ({"name": "stuck", "count": 1.5}, 400),
    ],
)
async def test_bad_queue_requests(client: TestClient[Any, Any], body: Any, status: int) -> None:
    detail = await problem(client, "POST", "/scenarios/next", status, json=body)
    if body.get("name") == "nope":
        assert "known scenarios" in detail
    assert (await control(client, "GET", "/scenarios", schema="control.scenarios.response"))["queued"] == []


async def test_the_queue_is_bounded(client: TestClient[Any, Any]) -> None:
    for _ in range(2):
        await control(
            client,
            "POST",
            "/scenarios/next",
            json={"name": "stuck", "count": 5000},
            schema="control.scenario-queue.response",
        )
    detail = await problem(client, "POST", "/scenarios/next", 400, json={"name": "failure"})
    assert "at most 10000" in detail and "10000 are queued" in detail
    queued = (await control(client, "GET", "/scenarios", schema="control.scenarios.response"))["queued"]
    assert queued == ["stuck"] * 10000


# -- jobs -----------------------------------------------------------------------------------------


async def test_jobs_needs_an_org_or_all(client: TestClient[Any, Any]) -> None:
    assert "org" in await problem(client, "GET", "/jobs", 400)
    assert "org" in await problem(client, "GET", "/jobs?org=", 400)
    assert "org" in await problem(client, "GET", "/jobs?sandbox=prod", 400)


async def test_jobs_per_tenant_and_all(client: TestClient[Any, Any], aep: Aep) -> None:
    mine = await new_job(aep)
    dev = await new_job(Aep(client, sandbox="dev"))
    other = await new_job(Aep(client, org=OTHER_ORG))
    assert [e["job"]["id"] for e in await jobs_of(client, f"org={aep.org}")] == [mine["id"]]
    assert [e["job"]["id"] for e in await jobs_of(client, f"org={aep.org}&sandbox=prod")] == [mine["id"]]
    assert [e["job"]["id"] for e in await jobs_of(client, f"org={aep.org}&sandbox=dev")] == [dev["id"]]
    assert [e["job"]["id"] for e in await jobs_of(client, "org=NOBODY@AdobeOrg")] == []
    everything = await jobs_of(client, "all=true")
    assert sorted(e["job"]["id"] for e in everything) == sorted([mine["id"], dev["id"], other["id"]])
    entry = next(e for e in everything if e["job"]["id"] == other["id"])
    assert entry["tenant"] == {"org": OTHER_ORG, "sandbox": "prod"}
    assert entry["scenario"] == "success"


async def test_listing_jobs_on_the_control_plane_is_not_a_poll(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    job = await new_job(aep)
    for _ in range(3):
        (entry,) = await jobs_of(client, f"org={aep.org}")
        assert (entry["job"]["status"], entry["pollsInStep"]) == ("NEW", 0)
    await aep.get_job(job["id"])
    (entry,) = await jobs_of(client, f"org={aep.org}")
    assert (entry["job"]["status"], entry["pollsInStep"]) == ("PROCESSING", 0)


async def test_listing_jobs_on_the_control_plane_follows_the_clock(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    await new_job(aep)
    await aep.advance(5)
    (entry,) = await jobs_of(client, "all=true")
    assert entry["job"]["status"] == "PROCESSING"
    assert entry["job"]["updateTime"] == START_MS + 5000


# -- force ----------------------------------------------------------------------------------------


async def force(client: TestClient[Any, Any], job_id: int, body: Any, status: int = 200) -> Any:
    schema = "control.job.response" if status == 200 else "error.problem"
    return await control(client, "POST", f"/jobs/{job_id}/force", json=body, status=status, schema=schema)


async def test_force_a_live_status_pins_the_job(client: TestClient[Any, Any], aep: Aep) -> None:
    job = await new_job(aep)
    await aep.advance(1)
    forced = await force(client, job["id"], {"status": "PROCESSING"})
    assert forced["job"]["status"] == "PROCESSING"
    assert forced["job"]["updateTime"] == START_MS + 1000
    await aep.advance(3600)
    for _ in range(3):
        assert (await aep.get_job(job["id"]))["status"] == "PROCESSING"


async def test_force_failed_with_errors(client: TestClient[Any, Any], aep: Aep) -> None:
    job = await new_job(aep, **{"x-emulator-scenario": "stuck"})
    errors = [{"code": "0090000009", "msg": "forced failure", "callStack": "test"}]
    forced = await force(client, job["id"], {"status": "FAILED", "errors": errors})
    assert forced["job"]["errors"] == errors
    shown = await aep.get_job(job["id"])
    assert shown["status"] == "FAILED"
    assert shown["errors"] == errors
    assert shown["metrics"]["totalTime"]["endTimeInMs"] == shown["updateTime"]


async def test_force_succeeded(client: TestClient[Any, Any], aep: Aep) -> None:
    job = await new_job(aep, **{"x-emulator-scenario": "stuck"})
    await aep.get_job(job["id"])
    await aep.advance(2)
    forced = await force(client, job["id"], {"status": "SUCCEEDED"})
    metrics = forced["job"]["metrics"]
    assert metrics["totalTime"] == {
        "startTimeInMs": START_MS,
        "endTimeInMs": START_MS + 2000,
        "totalTimeInMs": 2000,
    }
    assert "aCPDatasetWriteTime" in metrics


async def test_force_reaches_any_tenants_job(client: TestClient[Any, Any]) -> None:
    job = await new_job(Aep(client, org=OTHER_ORG, sandbox="dev"))
    forced = await force(client, job["id"], {"status": "CANCELLED"})
    assert forced["tenant"] == {"org": OTHER_ORG, "sandbox": "dev"}


@pytest.mark.parametrize(
    "body",
    [{"status": "DONE"}, {}, {"status": "FAILED", "errors": [{"code": "1"}]}, {"status": "FAILED", "x": 1}],
)
async def test_force_rejects_bad_bodies(client: TestClient[Any, Any], aep: Aep, body: Any) -> None:
    job = await new_job(aep)
    await force(client, job["id"], body, status=400)
    assert await status_of(client, job["id"]) == "NEW"


@pytest.mark.parametrize("job_id", ["999", "abc"])
async def test_force_an_unknown_job_is_a_404(client: TestClient[Any, Any], job_id: str) -> None:
    detail = await problem(client, "POST", f"/jobs/{job_id}/force", 404, json={"status": "FAILED"})
    assert job_id in detail


async def test_force_a_terminal_job_is_a_409(client: TestClient[Any, Any], aep: Aep) -> None:
    job = await new_job(aep)
    await aep.advance(10)
    detail = await problem(client, "POST", f"/jobs/{job['id']}/force", 409, json={"status": "FAILED"})
    assert "SUCCEEDED" in detail
    assert (await aep.get_job(job["id"]))["status"] == "SUCCEEDED"


# -- reset ----------------------------------------------------------------------------------------


async def test_reset_returns_to_the_startup_state(client: TestClient[Any, Any], aep: Aep) -> None:
    startup_scenarios = await control(client, "GET", "/scenarios", schema="control.scenarios.response")
    job = await new_job(aep)
    await aep.get_job(job["id"])  # one poll counted
    await control(
        client, "POST", "/scenarios", data=UPLOADED, status=201, schema="control.scenario-added.response"
    )
    await control(
        client,
        "PUT",
        "/scenarios/default",
        json={"name": "uploaded"},
        schema="control.scenario-default.response",
    )
    await control(
        client,
        "POST",
        "/scenarios/next",
        json={"name": "stuck", "count": 3},
        schema="control.scenario-queue.response",
    )
    await aep.advance(600)
    journal = await control(client, "GET", "/requests", schema="control.requests.response")
    assert journal["requests"]

    body = await control(client, "POST", "/reset", schema="control.reset.response")
    assert body == {"reset": "all"}

    assert (
        await control(client, "GET", "/scenarios", schema="control.scenarios.response") == startup_scenarios
    )
    assert (await control(client, "GET", "/clock", schema="control.clock.response"))["now"] == START_MS
    assert (await control(client, "GET", "/requests", schema="control.requests.response"))["requests"] == []
    assert await jobs_of(client, "all=true") == []
    await aep.call("GET", f"{JOBS}/{job['id']}", status=404, schema="error.ups")
    datasets = await aep.call("GET", "/data/foundation/catalog/dataSets", status=200, schema=None)
    assert datasets == {}
    # Poll counts start over: a new job (ids restart too) needs its own first poll.
    again = await new_job(aep)
    assert again["id"] == job["id"]
    assert (await aep.get_job(again["id"]))["status"] == "PROCESSING"


async def test_reset_one_tenant_clears_only_its_objects(client: TestClient[Any, Any], aep: Aep) -> None:
    other = Aep(client, org=OTHER_ORG)
    mine, theirs = await new_job(aep), await new_job(other)
    dev = await new_job(Aep(client, sandbox="dev"))
    await control(
        client,
        "PUT",
        "/scenarios/default",
        json={"name": "stuck"},
        schema="control.scenario-default.response",
    )
    await aep.advance(1)

    body = await control(
        client, "POST", f"/reset?org={aep.org}&sandbox=prod", schema="control.reset.response"
    )
    assert body == {"reset": {"org": aep.org, "sandbox": "prod"}}

    await aep.call("GET", f"{JOBS}/{mine['id']}", status=404, schema="error.ups")
    assert (await other.get_job(theirs["id"]))["id"] == theirs["id"]
    assert (await Aep(client, sandbox="dev").get_job(dev["id"]))["id"] == dev["id"]
    assert (await control(client, "GET", "/scenarios", schema="control.scenarios.response"))[
        "default"
    ] == "stuck"
    assert (await control(client, "GET", "/clock", schema="control.clock.response"))["now"] == START_MS + 1000
    assert (await control(client, "GET", "/requests", schema="control.requests.response"))["requests"]


async def test_reset_a_tenant_defaults_to_the_prod_sandbox(client: TestClient[Any, Any], aep: Aep) -> None:
    await new_job(aep)
    body = await control(client, "POST", f"/reset?org={aep.org}", schema="control.reset.response")
    assert body == {"reset": {"org": aep.org, "sandbox": "prod"}}
    assert await jobs_of(client, f"org={aep.org}") == []


@pytest.mark.parametrize("query", ["sandbox=prod", "org=", "org=&sandbox=prod"])
async def test_reset_refuses_a_partial_tenant(client: TestClient[Any, Any], aep: Aep, query: str) -> None:
    await new_job(aep)
    await problem(client, "POST", f"/reset?{query}", 400)
    assert len(await jobs_of(client, "all=true")) == 1
