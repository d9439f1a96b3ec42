"""End to end through HTTP, one test (or a few) per bundled scenario, on the manual clock."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator import clock as clock_module
from emulator.app import create_app
from emulator.options import Options
from tests.conftest import START_MS, Aep, ClientFactory, assert_matches

JOBS = "/data/core/ups/export/jobs"
BATCHES = "/data/foundation/catalog/batches"


async def start(aep: Aep, scenario: str | None = None, **fields: Any) -> Any:
    dataset_id = await aep.create_dataset()
    headers = {"x-emulator-scenario": scenario} if scenario else {}
    job = await aep.create_job(dataset_id, headers=headers, **fields)
    assert job["status"] == "NEW"
    assert job["creationTime"] == job["updateTime"] == job["metrics"]["totalTime"]["startTimeInMs"]
    assert job["metrics"]["totalTime"] == {"startTimeInMs": job["creationTime"]}
    return job


async def scenario_of(client: TestClient[Any, Any], job_id: int) -> str:
    response = await client.get("/_emulator/jobs?all=true")
    body = await response.json()
    assert_matches("control.jobs.response", body)
    return str(next(e["scenario"] for e in body["jobs"] if e["job"]["id"] == job_id))


async def batch_status(aep: Aep, batch_id: str) -> str:
    body = await aep.call("GET", f"{BATCHES}/{batch_id}", status=200, schema="batch.map.response")
    return str(body[batch_id]["status"])


def check_timestamps(job: dict[str, Any]) -> None:
    """The timing rules every job shown over HTTP keeps."""
    metrics = job["metrics"]
    assert job["creationTime"] == metrics["totalTime"]["startTimeInMs"]
    assert job["updateTime"] >= job["creationTime"]
    terminal = job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED")
    for key in ("totalTime", "profileExportTime", "aCPDatasetWriteTime"):
        interval = metrics.get(key)
        if interval is None:
            continue
        if "endTimeInMs" in interval:
            assert interval["totalTimeInMs"] == interval["endTimeInMs"] - interval["startTimeInMs"] >= 0
        else:
            assert "totalTimeInMs" not in interval
    if terminal:
        assert metrics["totalTime"]["endTimeInMs"] == job["updateTime"]
    else:
        assert "endTimeInMs" not in metrics["totalTime"]


async def polled(aep: Aep, job_id: int) -> dict[str, Any]:
    job: dict[str, Any] = await aep.get_job(job_id)
    check_timestamps(job)
    return job


# -- success (the default) ------------------------------------------------------------------------


async def test_success_is_the_default_and_succeeds_on_the_second_get(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    job = await start(aep)
    assert await scenario_of(client, job["id"]) == "success"
    await aep.advance(1)
    processing = await polled(aep, job["id"])
    assert processing["status"] == "PROCESSING"
    assert processing["updateTime"] == START_MS + 1000
    assert processing["metrics"]["profileExportTime"] == {"startTimeInMs": START_MS + 1000}
    assert "aCPDatasetWriteTime" not in processing["metrics"]
    assert "exportJob" in processing["computeGatewayJobId"]
    assert await batch_status(aep, job["destination"]["batchId"]) == "processing"
    await aep.advance(2)
    done = await polled(aep, job["id"])
    assert done["status"] == "SUCCEEDED"
    assert done["updateTime"] == START_MS + 3000
    assert done["metrics"]["totalTime"] == {
        "startTimeInMs": START_MS,
        "endTimeInMs": START_MS + 3000,
        "totalTimeInMs": 3000,
    }
    assert done["metrics"]["profileExportTime"]["totalTimeInMs"] == 2000
    assert done["metrics"]["aCPDatasetWriteTime"]["endTimeInMs"] == START_MS + 3000
    assert set(done["computeGatewayJobId"]) == {"exportJob", "pushJob"}
    assert "errors" not in done
    assert await batch_status(aep, job["destination"]["batchId"]) == "success"
    # Terminal: more polls and time change nothing.
    await aep.advance(3600)
    assert await polled(aep, job["id"]) == done


async def test_success_on_the_clock_alone_within_ten_seconds(client: TestClient[Any, Any], aep: Aep) -> None:
    job = await start(aep)
    await aep.advance(9.999)
    response = await client.get("/_emulator/jobs?all=true")
    (entry,) = (await response.json())["jobs"]
    assert entry["job"]["status"] == "PROCESSING"
    await aep.advance(0.001)
    done = await polled(aep, job["id"])
    assert done["status"] == "SUCCEEDED"
    assert done["metrics"]["profileExportTime"]["startTimeInMs"] == START_MS + 5000
    assert done["updateTime"] == START_MS + 10_000


class FakeTime:
    """The `time` module as emulator.clock sees it: wall time moves only when the test says so."""

    def __init__(self) -> None:
        self.monotonic_s = 100.0

    def monotonic(self) -> float:
        return self.monotonic_s

    def time(self) -> float:
        return START_MS / 1000


@pytest.mark.parametrize("speed", [1, 60])
async def test_success_on_a_real_clock_within_ten_seconds(
    aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, speed: float
) -> None:
    fake = FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    client = await aiohttp_client(create_app(Options(clock="real", speed=speed)))
    aep = Aep(client)
    job = await start(aep)
    fake.monotonic_s += 9.999 / speed
    response = await client.get("/_emulator/jobs?all=true")
    (entry,) = (await response.json())["jobs"]
    assert entry["job"]["status"] == "PROCESSING"
    fake.monotonic_s += 0.001 / speed
    done = await polled(aep, job["id"])
    assert (done["status"], done["updateTime"]) == ("SUCCEEDED", START_MS + 10_000)


# -- failure --------------------------------------------------------------------------------------


async def test_failure_fails_with_adobes_codes_and_leaves_a_failed_batch(aep: Aep) -> None:
    job = await start(aep, "failure")
    assert (await polled(aep, job["id"]))["status"] == "PROCESSING"
    await aep.advance(4)
    failed = await polled(aep, job["id"])
    assert failed["status"] == "FAILED"
    assert [e["code"] for e in failed["errors"]] == ["0090000009", "unknown"]
    assert failed["errors"][1] == {
        "code": "unknown",
        "msg": "Job aborted.",
        "callStack": "org.apache.spark.SparkException: Job aborted.",
    }
    assert failed["updateTime"] == START_MS + 4000
    assert "aCPDatasetWriteTime" not in failed["metrics"]
    assert failed["metrics"]["profileExportTime"]["endTimeInMs"] == START_MS + 4000
    assert await batch_status(aep, job["destination"]["batchId"]) == "failed"
    # A finished job is deleted by DELETE, then gone.
    body = await aep.call("DELETE", f"{JOBS}/{job['id']}", status=200, schema="export-job.cancel.response")
    assert body == {"status": True, "message": "Export job has been deleted"}
    await aep.call("GET", f"{JOBS}/{job['id']}", status=404, schema="error.ups")


# -- stuck ----------------------------------------------------------------------------------------


async def test_stuck_stays_processing_until_cancelled(aep: Aep) -> None:
    job = await start(aep, "stuck")
    for _ in range(10):
        assert (await polled(aep, job["id"]))["status"] == "PROCESSING"
    await aep.advance(24 * 3600)
    still = await polled(aep, job["id"])
    assert (still["status"], still["updateTime"]) == ("PROCESSING", START_MS)
    body = await aep.call("DELETE", f"{JOBS}/{job['id']}", status=200, schema="export-job.cancel.response")
    assert body == {"status": True, "message": "Export job has been marked for cancelling"}
    cancelled = await polled(aep, job["id"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["updateTime"] == START_MS + 24 * 3600 * 1000
    assert cancelled["metrics"]["profileExportTime"]["totalTimeInMs"] == 24 * 3600 * 1000
    await aep.advance(60)
    assert await polled(aep, job["id"]) == cancelled
    assert await batch_status(aep, job["destination"]["batchId"]) == "aborted"
    body = await aep.call("DELETE", f"{JOBS}/{job['id']}", status=200, schema="export-job.cancel.response")
    assert body["message"] == "Export job has been deleted"
    await aep.call("GET", f"{JOBS}/{job['id']}", status=404, schema="error.ups")


async def test_a_job_cancelled_while_new(aep: Aep) -> None:
    job = await start(aep, "stuck")
    await aep.advance(1)
    await aep.call("DELETE", f"{JOBS}/{job['id']}", status=200, schema="export-job.cancel.response")
    cancelled = await polled(aep, job["id"])
    assert (cancelled["status"], cancelled["updateTime"]) == ("CANCELLED", START_MS + 1000)
    assert "profileExportTime" not in cancelled["metrics"]


# -- slow -----------------------------------------------------------------------------------------


async def test_slow_takes_realistic_minutes_on_the_clock(aep: Aep) -> None:
    job = await start(aep, "slow")
    for _ in range(5):
        assert (await polled(aep, job["id"]))["status"] == "NEW"
    await aep.advance(60)
    exporting = await polled(aep, job["id"])
    assert exporting["status"] == "PROCESSING"
    assert exporting["metrics"]["profileExportTime"] == {"startTimeInMs": START_MS + 60_000}
    await aep.advance(9 * 60)
    assert "aCPDatasetWriteTime" not in (await polled(aep, job["id"]))["metrics"]
    await aep.advance(60)
    writing = await polled(aep, job["id"])
    assert writing["status"] == "PROCESSING"
    assert writing["updateTime"] == START_MS + 660_000
    assert writing["metrics"]["profileExportTime"]["totalTimeInMs"] == 600_000
    assert writing["metrics"]["aCPDatasetWriteTime"] == {"startTimeInMs": START_MS + 660_000}
    assert "pushJob" in writing["computeGatewayJobId"]
    await aep.advance(299)
    assert (await polled(aep, job["id"]))["status"] == "PROCESSING"
    await aep.advance(1)
    done = await polled(aep, job["id"])
    assert done["status"] == "SUCCEEDED"
    assert done["metrics"]["totalTime"]["totalTimeInMs"] == 960_000
    assert done["metrics"]["aCPDatasetWriteTime"]["totalTimeInMs"] == 300_000


async def test_slow_read_late_shows_the_due_instants(aep: Aep) -> None:
    job = await start(aep, "slow")
    await aep.advance(3 * 3600)
    done = await polled(aep, job["id"])
    assert done["status"] == "SUCCEEDED"
    assert done["updateTime"] == START_MS + 960_000
    assert done["metrics"]["profileExportTime"]["startTimeInMs"] == START_MS + 60_000
    assert done["metrics"]["aCPDatasetWriteTime"]["startTimeInMs"] == START_MS + 660_000


async def test_slow_cancelled_while_writing(aep: Aep) -> None:
    job = await start(aep, "slow")
    await aep.advance(700)
    await aep.call("DELETE", f"{JOBS}/{job['id']}", status=200, schema="export-job.cancel.response")
    cancelled = await polled(aep, job["id"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["metrics"]["aCPDatasetWriteTime"] == {
        "startTimeInMs": START_MS + 660_000,
        "endTimeInMs": START_MS + 700_000,
        "totalTimeInMs": 40_000,
    }


# -- partial-errors, empty ------------------------------------------------------------------------


async def test_partial_errors_succeeds_with_an_errors_entry(aep: Aep) -> None:
    job = await start(aep, "partial-errors")
    await polled(aep, job["id"])
    done = await polled(aep, job["id"])
    assert done["status"] == "SUCCEEDED"
    assert done["errors"] == [
        {
            "code": "0100000003",
            "msg": "Error in Export Job",
            "callStack": "com.adobe.aep.unifiedprofile.common.logging.Logger",
        }
    ]
    assert await batch_status(aep, job["destination"]["batchId"]) == "success"


async def test_empty_succeeds(client: TestClient[Any, Any], aep: Aep) -> None:
    job = await start(aep, "empty")
    await polled(aep, job["id"])
    done = await polled(aep, job["id"])
    assert done["status"] == "SUCCEEDED"
    assert "errors" not in done
    assert await scenario_of(client, job["id"]) == "empty"
    if "totalExportedProfileCounter" in done["metrics"]:  # filled in once the export data exists
        assert done["metrics"]["totalExportedProfileCounter"] == 0


# -- flaky-gateway --------------------------------------------------------------------------------


async def test_flaky_gateway_503_503_429_then_succeeds_on_the_fifth_get(aep: Aep) -> None:
    job = await start(aep, "flaky-gateway")
    seen = []
    for _ in range(5):
        response = await aep.client.get(f"{JOBS}/{job['id']}", headers=aep.headers())
        body = await response.json()
        if response.status == 200:
            assert_matches("export-job.response", body)
            seen.append(body["status"])
        else:
            assert_matches("error.ups", body)
            seen.append(response.status)
            if response.status == 429:
                assert response.headers["Retry-After"] == "2"
    assert seen == [503, 503, 429, "PROCESSING", "SUCCEEDED"]


# -- selection ------------------------------------------------------------------------------------


async def test_an_unknown_scenario_header_is_a_400_naming_the_known_ones(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
    error = await aep.call(
        "POST", JOBS, json=body, status=400, schema="error.ups", headers={"x-emulator-scenario": "nope"}
    )
    message = error["errors"]["400"][0]["message"]
    assert "'nope'" in message
    assert "empty, failure, flaky-gateway, partial-errors, slow, stuck, success" in message


async def test_a_match_picks_the_scenario_and_the_header_beats_it(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    text = "name: by-fields\nmatch: {fields: '*failme*'}\nsteps: [{status: NEW}]\n"
    response = await client.post("/_emulator/scenarios", data=text)
    assert response.status == 201
    matched = await start(aep, fields="person.name,failme")
    plain = await start(aep, fields="person.name")
    forced = await start(aep, "failure", fields="failme")
    assert await scenario_of(client, matched["id"]) == "by-fields"
    assert await scenario_of(client, plain["id"]) == "success"
    assert await scenario_of(client, forced["id"]) == "failure"
    response = await client.post("/_emulator/scenarios/next", json={"name": "stuck"})
    assert response.status == 200
    queued = await start(aep, "failure", fields="failme")
    assert await scenario_of(client, queued["id"]) == "stuck"
