"""HTTP-level faults from scenarios: status + AEP body + headers, times, sequences, delay, drop."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from emulator.api.common import BACKEND
from tests.conftest import OTHER_ORG, Aep, assert_matches

JOBS = "/data/core/ups/export/jobs"
STEPS = """
steps:
  - status: NEW
  - status: PROCESSING
    after: {polls: 1}
  - status: SUCCEEDED
    after: {polls: 1}
"""


async def add_scenario(client: TestClient[Any, Any], name: str, faults: str) -> None:
    text = f"name: {name}\n{STEPS}faults:\n{faults}"
    response = await client.post("/_emulator/scenarios", data=text)
    body = await response.json()
    assert response.status == 201, body
    assert_matches("control.scenario-added.response", body)


async def job_with(aep: Aep, scenario: str) -> int:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": scenario})
    return int(job["id"])


async def get(aep: Aep, job_id: int, **headers: str) -> aiohttp.ClientResponse:
    return await aep.client.get(f"{JOBS}/{job_id}", headers={**aep.headers(), **headers})


async def seen(client: TestClient[Any, Any], job_id: int) -> tuple[str, int]:
    """(status, polls counted) from the control plane, which never polls."""
    response = await client.get("/_emulator/jobs?all=true")
    body = await response.json()
    assert_matches("control.jobs.response", body)
    (entry,) = [e for e in body["jobs"] if e["job"]["id"] == job_id]
    return entry["job"]["status"], entry["pollsInStep"]


async def statuses(aep: Aep, job_id: int, count: int) -> list[int]:
    codes = []
    for _ in range(count):
        response = await get(aep, job_id)
        body = await response.json()
        assert_matches("export-job.response" if response.status == 200 else "error.ups", body)
        codes.append(response.status)
    return codes


# -- respond --------------------------------------------------------------------------------------


async def test_a_status_fault_answers_in_aeps_ups_shape(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "down", "  - {operation: get_job, respond: {status: 503}}\n")
    job_id = await job_with(aep, "down")
    response = await get(aep, job_id, **{"x-request-id": "trace-1"})
    body = await response.json()
    assert response.status == 503
    assert response.content_type == "application/json"
    assert response.headers["x-request-id"] == "trace-1"
    assert_matches("error.ups", body)
    assert body["status"] == 503
    assert body["title"] == "ServiceUnavailableError"
    assert body["requestId"] == "trace-1"
    assert list(body["errors"]) == ["503"]
    assert body["type"].endswith("-503")


async def test_a_429_carries_retry_after(client: TestClient[Any, Any], aep: Aep) -> None:
    faults = '  - {operation: get_job, respond: {status: 429, headers: {Retry-After: "7"}}}\n'
    await add_scenario(client, "throttled", faults)
    job_id = await job_with(aep, "throttled")
    response = await get(aep, job_id)
    body = await response.json()
    assert response.status == 429
    assert response.headers["Retry-After"] == "7"
    assert_matches("error.ups", body)
    assert body["title"] == "TooManyRequestsError"


async def test_a_custom_body_and_headers_are_sent_as_given(client: TestClient[Any, Any], aep: Aep) -> None:
    faults = (
        "  - operation: get_job\n"
        "    respond:\n"
        "      status: 502\n"
        "      headers: {X-Upstream: compute}\n"
        '      body: {error_code: "502001", message: upstream down, extra: [1, 2]}\n'
    )
    await add_scenario(client, "custom", faults)
    job_id = await job_with(aep, "custom")
    response = await get(aep, job_id)
    assert response.status == 502
    assert response.headers["X-Upstream"] == "compute"
    assert response.content_type == "application/json"
    assert await response.json() == {"error_code": "502001", "message": "upstream down", "extra": [1, 2]}


async def test_times_counts_then_the_job_answers(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "thrice", "  - {operation: get_job, times: 3, respond: {status: 500}}\n")
    job_id = await job_with(aep, "thrice")
    assert await statuses(aep, job_id, 5) == [500, 500, 500, 200, 200]


async def test_a_sequence_of_faults_fires_in_order(client: TestClient[Any, Any], aep: Aep) -> None:
    faults = (
        "  - {operation: get_job, times: 2, respond: {status: 503}}\n"
        '  - {operation: get_job, respond: {status: 429, headers: {Retry-After: "1"}}}\n'
        "  - {operation: get_job, respond: {status: 504}}\n"
    )
    await add_scenario(client, "sequence", faults)
    job_id = await job_with(aep, "sequence")
    assert await statuses(aep, job_id, 6) == [503, 503, 429, 504, 200, 200]


async def test_a_faulted_get_is_not_a_poll(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "flaky", "  - {operation: get_job, times: 3, respond: {status: 503}}\n")
    job_id = await job_with(aep, "flaky")
    assert await statuses(aep, job_id, 3) == [503, 503, 503]
    assert await seen(client, job_id) == ("NEW", 0)
    assert (await aep.get_job(job_id))["status"] == "PROCESSING"
    assert (await aep.get_job(job_id))["status"] == "SUCCEEDED"


async def test_faults_are_counted_per_job(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "once", "  - {operation: get_job, respond: {status: 503}}\n")
    first, second = await job_with(aep, "once"), await job_with(aep, "once")
    assert await statuses(aep, first, 2) == [503, 200]
    assert await statuses(aep, second, 2) == [503, 200]


async def test_a_get_job_fault_touches_no_other_operation(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "gets", "  - {operation: get_job, times: 5, respond: {status: 503}}\n")
    job_id = await job_with(aep, "gets")
    await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
    await aep.call("DELETE", f"{JOBS}/{job_id}", status=200, schema="export-job.cancel.response")
    await aep.call("GET", f"{JOBS}/{job_id}", status=503, schema="error.ups")


# -- delay ----------------------------------------------------------------------------------------


class RecordedSleep:
    """Stands in for the faults' sleep: records each delay, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def sleeps(app: web.Application) -> RecordedSleep:
    recorder = RecordedSleep()
    app[BACKEND].faults.sleep = recorder.sleep
    return recorder


async def test_a_delay_slows_the_request_which_then_goes_on(
    client: TestClient[Any, Any], aep: Aep, sleeps: RecordedSleep
) -> None:
    await add_scenario(client, "slowgw", "  - {operation: get_job, times: 2, delay: {seconds: 0.01}}\n")
    job_id = await job_with(aep, "slowgw")
    assert (await aep.get_job(job_id))["status"] == "PROCESSING"  # a delayed GET is still a poll
    assert (await aep.get_job(job_id))["status"] == "SUCCEEDED"
    assert sleeps.delays == [0.01, 0.01]
    await aep.get_job(job_id)
    assert sleeps.delays == [0.01, 0.01]


async def test_a_delay_then_a_status(client: TestClient[Any, Any], aep: Aep, sleeps: RecordedSleep) -> None:
    await add_scenario(
        client, "timeout", "  - {operation: get_job, delay: {seconds: 0.01}, respond: {status: 504}}\n"
    )
    job_id = await job_with(aep, "timeout")
    assert await statuses(aep, job_id, 2) == [504, 200]
    assert sleeps.delays == [0.01]


async def test_a_real_delay_completes(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "tiny", "  - {operation: get_job, delay: {seconds: 0.01}}\n")
    job_id = await job_with(aep, "tiny")
    assert (await aep.get_job(job_id))["status"] == "PROCESSING"


# -- drop -----------------------------------------------------------------------------------------


async def test_a_drop_closes_the_connection_without_an_answer(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "dropper", "  - {operation: get_job, drop: true}\n")
    job_id = await job_with(aep, "dropper")
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        response = await get(aep, job_id)
        await response.read()
    assert await seen(client, job_id) == ("NEW", 0)  # a dropped GET is not a poll
    assert (await aep.get_job(job_id))["status"] == "PROCESSING"
    journal = await (await client.get("/_emulator/requests", params={"method": "GET"})).json()
    assert_matches("control.requests.response", journal)
    polls = [e for e in journal["requests"] if e["path"].endswith(f"/{job_id}")]
    assert [e.get("dropped", False) for e in polls] == [True, False]


async def test_a_drop_after_a_delay(client: TestClient[Any, Any], aep: Aep, sleeps: RecordedSleep) -> None:
    await add_scenario(client, "slowdrop", "  - {operation: get_job, delay: {seconds: 0.01}, drop: true}\n")
    job_id = await job_with(aep, "slowdrop")
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        response = await get(aep, job_id)
        await response.read()
    assert sleeps.delays == [0.01]
    assert (await aep.get_job(job_id))["status"] == "PROCESSING"


# -- other operations -----------------------------------------------------------------------------


async def create(aep: Aep, dataset_id: str, **headers: str) -> aiohttp.ClientResponse:
    body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
    return await aep.client.post(JOBS, json=body, headers={**aep.headers(), **headers})


async def control_jobs(client: TestClient[Any, Any]) -> list[Any]:
    response = await client.get("/_emulator/jobs?all=true")
    body = await response.json()
    assert_matches("control.jobs.response", body)
    return list(body["jobs"])


async def test_create_job_fault_creates_nothing(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "nocreate", "  - {operation: create_job, times: 2, respond: {status: 503}}\n")
    dataset_id = await aep.create_dataset()
    for _ in range(2):
        response = await create(aep, dataset_id, **{"x-emulator-scenario": "nocreate"})
        assert response.status == 503
        assert_matches("error.ups", await response.json())
    assert await control_jobs(client) == []
    response = await create(aep, dataset_id, **{"x-emulator-scenario": "nocreate"})
    assert response.status == 200
    assert_matches("export-job.response", await response.json())
    assert [e["scenario"] for e in await control_jobs(client)] == ["nocreate"]


async def test_create_job_faults_are_counted_per_tenant(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "nocreate", "  - {operation: create_job, respond: {status: 503}}\n")
    other = Aep(client, org=OTHER_ORG)
    for tenant in (aep, other):
        dataset_id = await tenant.create_dataset()
        statuses = []
        for _ in range(2):
            response = await create(tenant, dataset_id, **{"x-emulator-scenario": "nocreate"})
            statuses.append(response.status)
        assert statuses == [503, 200]


async def test_a_queued_scenario_survives_its_create_fault(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "nocreate", "  - {operation: create_job, respond: {status: 429}}\n")
    response = await client.post("/_emulator/scenarios/next", json={"name": "nocreate"})
    assert response.status == 200
    dataset_id = await aep.create_dataset()
    assert (await create(aep, dataset_id)).status == 429
    assert (await create(aep, dataset_id)).status == 200
    assert [e["scenario"] for e in await control_jobs(client)] == ["nocreate"]


async def test_list_jobs_faults_come_from_the_default_scenario(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    await add_scenario(client, "nolist", "  - {operation: list_jobs, times: 2, respond: {status: 500}}\n")
    await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
    response = await client.put("/_emulator/scenarios/default", json={"name": "nolist"})
    assert response.status == 200
    await aep.call("GET", JOBS, status=500, schema="error.ups")
    await aep.call("GET", f"{JOBS}/", status=500, schema="error.ups")
    await aep.call("GET", JOBS, status=200, schema="export-job.list.response")


async def test_cancel_job_fault_leaves_the_job_running(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "nocancel", "  - {operation: cancel_job, respond: {status: 503}}\n")
    job_id = await job_with(aep, "nocancel")
    await aep.call("DELETE", f"{JOBS}/{job_id}", status=503, schema="error.ups")
    assert (await seen(client, job_id))[0] == "NEW"
    body = await aep.call("DELETE", f"{JOBS}/{job_id}", status=200, schema="export-job.cancel.response")
    assert body == {"status": True, "message": "Export job has been marked for cancelling"}
    assert (await aep.get_job(job_id))["status"] == "CANCELLED"
