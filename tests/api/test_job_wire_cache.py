"""A job's JSON is encoded once per displayed state and reused by GET and the list: every change a client
can cause or wait for must show at once, in both, and both must show the same thing."""

from __future__ import annotations

from typing import Any

from tests.conftest import Aep, assert_matches

JOBS = "/data/core/ups/export/jobs"


async def _get(aep: Aep, job_id: int) -> Any:
    return await aep.call("GET", f"{JOBS}/{job_id}", status=200, schema="export-job.response")


async def _listed(aep: Aep, job_id: int) -> Any:
    body = await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
    return next(record for record in body["records"] if record["id"] == job_id)


async def test_get_and_list_show_each_state_as_it_comes(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)  # success: NEW, PROCESSING on a poll, SUCCEEDED on the next
    assert job["status"] == "NEW"
    assert (await _listed(aep, job["id"]))["status"] == "NEW"
    processing = await _get(aep, job["id"])
    assert processing["status"] == "PROCESSING"
    assert "exportJob" in processing["computeGatewayJobId"]
    assert await _listed(aep, job["id"]) == processing
    succeeded = await _get(aep, job["id"])
    assert succeeded["status"] == "SUCCEEDED"
    assert succeeded["metrics"]["totalExportedProfileCounter"] > 0
    assert "pushJob" in succeeded["computeGatewayJobId"]
    assert await _listed(aep, job["id"]) == succeeded
    assert await _get(aep, job["id"]) == succeeded  # a finished job reads the same forever


async def test_a_poll_that_moves_nothing_shows_the_same_job(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "stuck"})
    first = await _get(aep, job["id"])
    assert first["status"] == "PROCESSING"
    assert await _get(aep, job["id"]) == first
    response = await aep.client.get(f"/_emulator/jobs?org={aep.org}")
    state = await response.json()
    assert_matches("control.jobs.response", state)
    polls = next(j for j in state["jobs"] if j["job"]["id"] == job["id"])["pollsInStep"]
    assert polls == 1  # the second poll counted, though nothing shown changed


async def test_the_clock_cancel_and_force_show_at_once(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    slow = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "stuck"})
    await _get(aep, slow["id"])
    cancelled = await aep.call(
        "DELETE", f"{JOBS}/{slow['id']}", status=200, schema="export-job.cancel.response"
    )
    assert cancelled["status"] is True
    assert (await _get(aep, slow["id"]))["status"] == "CANCELLED"

    forced = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "stuck"})
    await _get(aep, forced["id"])
    response = await aep.client.post(f"/_emulator/jobs/{forced['id']}/force", json={"status": "FAILED"})
    assert response.status == 200
    assert_matches("control.job.response", await response.json())
    assert (await _listed(aep, forced["id"]))["status"] == "FAILED"

    timed = await aep.create_job(dataset_id)
    assert (await _listed(aep, timed["id"]))["status"] == "NEW"
    await aep.advance(10)  # success: PROCESSING after 5 s, SUCCEEDED 5 s later, on the clock alone
    listed = await _listed(aep, timed["id"])
    assert listed["status"] == "SUCCEEDED"
    assert await _get(aep, timed["id"]) == listed
