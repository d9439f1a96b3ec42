"""Export jobs: create (profile and segment exports), get, cancel/delete, and methods that do not exist."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import DEFAULT_MERGE_POLICY, ORG, OTHER_ORG, START_MS, Aep, assert_matches

JOBS = "/data/core/ups/export/jobs"
BATCHES = "/data/foundation/catalog/batches"
CANCELLING = {"status": True, "message": "Export job has been marked for cancelling"}
DELETED = {"status": True, "message": "Export job has been deleted"}

# A profile export with every documented profile-export field.
PROFILE_REQUEST: dict[str, Any] = {
    "fields": "identities.id,personalEmail.address",
    "mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 3},
    "additionalFields": {
        "eventList": {
            "fields": "environment.browserDetails.name,environment.browserDetails.version",
            "filter": {"fromIngestTimestamp": "2018-10-25T13:22:04-07:00"},
        }
    },
    "destination": {"datasetId": "<dataset>", "segmentPerBatch": False},
    "schema": {"name": "_xdm.context.profile"},
}

# A segment export with every documented field of the Segmentation API.
SEGMENT_REQUEST: dict[str, Any] = {
    "fields": "identityMap,person.name",
    "mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 1},
    "filter": {
        "segments": [
            {"segmentId": "52c26d0d-45f2-47a2-ab30-ed06abc981ff", "segmentNs": "AAM", "status": ["realized"]},
            {"segmentId": "9b1f2d3c-0000-4000-8000-000000000001", "segmentNs": "ups", "status": ["exited"]},
        ],
        "segmentQualificationTime": {"startTime": "2018-01-01T00:00:00Z", "endTime": "2018-02-01T00:00:00Z"},
        "fromIngestTimestamp": "2018-01-01T00:00:00Z",
        "emptyProfiles": True,
    },
    "additionalFields": {
        "eventList": {
            "fields": "_id,_experience",
            "filter": {
                "fromIngestTimestamp": "2018-01-01T00:00:00Z",
                "toIngestTimestamp": "2020-01-01T00:00:00Z",
            },
        }
    },
    "destination": {"datasetId": "<dataset>", "segmentPerBatch": False},
    "schema": {"name": "_xdm.context.profile"},
    "evaluationInfo": {"segmentation": True},
}


def targeting(request: dict[str, Any], dataset_id: str, **destination: Any) -> dict[str, Any]:
    return {**request, "destination": {**request["destination"], "datasetId": dataset_id, **destination}}


async def create(aep: Aep, body: dict[str, Any], **headers: str) -> tuple[dict[str, Any], str]:
    """The created job and its X-Location header."""
    response = await aep.client.post(JOBS, json=body, headers=aep.headers(**headers))
    job = await response.json()
    assert response.status == 200, job
    assert_matches("export-job.response", job)
    return job, response.headers["X-Location"]


def assert_timing_consistent(job: dict[str, Any]) -> None:
    metrics = job["metrics"]
    assert job["creationTime"] == metrics["totalTime"]["startTimeInMs"]
    assert job["updateTime"] >= job["creationTime"]
    for name in ("totalTime", "profileExportTime", "aCPDatasetWriteTime"):
        interval = metrics.get(name)
        if interval is not None and "endTimeInMs" in interval:
            assert interval["totalTimeInMs"] == interval["endTimeInMs"] - interval["startTimeInMs"], name
    if job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
        assert metrics["totalTime"]["endTimeInMs"] == job["updateTime"]


async def test_profile_export_echoes_every_field(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    request = targeting(PROFILE_REQUEST, dataset_id)
    job, location = await create(aep, request)
    for field in ("fields", "mergePolicy", "additionalFields", "schema"):
        assert job[field] == request[field], field
    assert job["destination"]["datasetId"] == dataset_id
    assert job["destination"]["segmentPerBatch"] is False
    assert "filter" not in job and "evaluationInfo" not in job
    assert job["status"] == "NEW"
    assert job["jobType"] == "BATCH"
    assert job["imsOrgId"] == ORG
    assert job["profileInstanceId"] == "ups"
    assert job["computeGatewayJobId"] == {}
    assert "errors" not in job
    assert job["creationTime"] == job["updateTime"] == START_MS
    assert job["metrics"] == {"totalTime": {"startTimeInMs": START_MS}}
    assert location == f"{JOBS}/{job['id']}"


async def test_segment_export_echoes_every_field(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    request = targeting(SEGMENT_REQUEST, dataset_id)
    job, _ = await create(aep, request)
    for field in ("fields", "mergePolicy", "filter", "additionalFields", "schema", "evaluationInfo"):
        assert job[field] == request[field], field
    assert job["destination"] == {
        "datasetId": dataset_id,
        "segmentPerBatch": False,
        "batchId": job["destination"]["batchId"],
    }
    assert job["status"] == "NEW"


async def test_request_headers_are_echoed(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job, _ = await create(
        aep,
        targeting(PROFILE_REQUEST, dataset_id),
        **{"x-request-id": "my-request-42", "x-profile-instance-id": "test_xdm_latest_profile"},
    )
    assert job["requestId"] == "my-request-42"
    assert job["profileInstanceId"] == "test_xdm_latest_profile"
    assert (await aep.get_job(job["id"]))["requestId"] == "my-request-42"


async def test_defaults_are_filled_in(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    request = {
        "filter": {"segments": [{"segmentId": "s-1"}, {"segmentId": "s-2", "status": ["exited"]}]},
        "mergePolicy": {"id": DEFAULT_MERGE_POLICY},
        "destination": {"datasetId": dataset_id},
        "schema": {"name": "_xdm.context.profile"},
    }
    job, _ = await create(aep, request)
    assert job["filter"]["segments"] == [
        {"segmentId": "s-1", "segmentNs": "ups", "status": ["realized", "existing"]},
        {"segmentId": "s-2", "segmentNs": "ups", "status": ["exited"]},
    ]
    assert job["destination"]["segmentPerBatch"] is False
    assert job["mergePolicy"] == {"id": DEFAULT_MERGE_POLICY, "version": 1}
    # A GET shows the same defaults.
    assert (await aep.get_job(job["id"]))["filter"] == job["filter"]


async def test_one_batch_per_job_without_segment_per_batch(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job, _ = await create(aep, targeting(SEGMENT_REQUEST, dataset_id))
    batch_id = job["destination"]["batchId"]
    assert "batches" not in job["destination"]
    batches = await aep.call("GET", BATCHES, status=200, schema="batch.map.response")
    assert list(batches) == [batch_id]


async def test_one_batch_per_segment_with_segment_per_batch(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job, _ = await create(aep, targeting(SEGMENT_REQUEST, dataset_id, segmentPerBatch=True))
    destination = job["destination"]
    assert "batchId" not in destination
    assert destination["segmentPerBatch"] is True
    segments = SEGMENT_REQUEST["filter"]["segments"]
    assert [{k: v for k, v in b.items() if k != "batchId"} for b in destination["batches"]] == segments
    batch_ids = [b["batchId"] for b in destination["batches"]]
    assert len(set(batch_ids)) == len(segments)
    batches = await aep.call("GET", BATCHES, status=200, schema="batch.map.response")
    assert sorted(batches) == sorted(batch_ids)
    polled = await aep.get_job(job["id"])
    assert polled["destination"] == destination


async def test_segment_per_batch_needs_segments(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    body = targeting(PROFILE_REQUEST, dataset_id, segmentPerBatch=True)
    error = await aep.call("POST", JOBS, json=body, status=400, schema="error.ups")
    assert "segmentPerBatch" in error["errors"]["400"][0]["message"]


async def test_client_batch_fields_are_not_echoed(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    body = targeting(PROFILE_REQUEST, dataset_id, batchId="mine", batches=[{"batchId": "mine"}], extra=1)
    job, _ = await create(aep, body)
    assert set(job["destination"]) == {"datasetId", "segmentPerBatch", "batchId"}
    assert job["destination"]["batchId"] != "mine"


async def test_unknown_dataset_is_400_naming_it(aep: Aep) -> None:
    body = targeting(PROFILE_REQUEST, "5b020a27e7040801dedba61b")
    error = await aep.call("POST", JOBS, json=body, status=400, schema="error.ups")
    message = error["errors"]["400"][0]["message"]
    assert "5b020a27e7040801dedba61b" in message
    assert "destination.datasetId" in message
    assert error["title"] == "BadRequestError"
    assert (await aep.call("GET", JOBS, status=200, schema="export-job.list.response"))["records"] == []


@pytest.mark.parametrize(("org", "sandbox"), [(OTHER_ORG, "prod"), (ORG, "dev")])
async def test_another_tenants_dataset_is_400(aep: Aep, org: str, sandbox: str) -> None:
    owner = Aep(aep.client, org=org, sandbox=sandbox)
    dataset_id = await owner.create_dataset()
    error = await aep.call(
        "POST", JOBS, json=targeting(PROFILE_REQUEST, dataset_id), status=400, schema="error.ups"
    )
    assert dataset_id in error["errors"]["400"][0]["message"]
    # The owner can use it.
    await owner.create_job(dataset_id)


async def test_get_polls_the_job_to_success(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    first = await aep.get_job(job["id"])
    assert first["status"] == "PROCESSING"
    assert "exportJob" in first["computeGatewayJobId"]
    assert_timing_consistent(first)
    await aep.advance(3)
    second = await aep.get_job(job["id"])
    assert second["status"] == "SUCCEEDED"
    assert second["updateTime"] == START_MS + 3000
    assert set(second["computeGatewayJobId"]) == {"exportJob", "pushJob"}
    assert set(second["metrics"]) >= {"totalTime", "profileExportTime", "aCPDatasetWriteTime"}
    assert_timing_consistent(second)
    for field in ("id", "destination", "schema", "requestId", "creationTime"):
        assert second[field] == job[field], field


async def test_failed_job_shows_its_errors(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "failure"})
    await aep.get_job(job["id"])
    failed = await aep.get_job(job["id"])
    assert failed["status"] == "FAILED"
    assert [e["code"] for e in failed["errors"]] == ["0090000009", "unknown"]
    assert all(e["callStack"] for e in failed["errors"])
    assert_timing_consistent(failed)


@pytest.mark.parametrize(
    "job_id", ["999", "0", "abc", "1.0", "-1", "1e3", "99999999999999999999999", "%C2%B2"]
)
async def test_get_unknown_job_is_404(aep: Aep, job_id: str) -> None:
    error = await aep.call("GET", f"{JOBS}/{job_id}", status=404, schema="error.ups")
    assert error["status"] == 404
    assert error["title"] == "NotFoundError"
    assert error["type"].endswith("-404")


async def test_delete_live_job_cancels_it(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    await aep.advance(2)
    answer = await aep.call("DELETE", f"{JOBS}/{job['id']}", status=200, schema="export-job.cancel.response")
    assert answer == CANCELLING
    cancelled = await aep.get_job(job["id"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["updateTime"] == START_MS + 2000
    assert_timing_consistent(cancelled)
    # Cancelled is terminal: polls and time do not move it.
    await aep.advance(3600)
    assert (await aep.get_job(job["id"]))["status"] == "CANCELLED"
    batch_id = job["destination"]["batchId"]
    batch = await aep.call("GET", f"{BATCHES}/{batch_id}", status=200, schema="batch.map.response")
    assert batch[batch_id]["status"] == "aborted"


async def test_delete_processing_job_cancels_it(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "stuck"})
    assert (await aep.get_job(job["id"]))["status"] == "PROCESSING"
    answer = await aep.call("DELETE", f"{JOBS}/{job['id']}", status=200, schema="export-job.cancel.response")
    assert answer == CANCELLING
    assert (await aep.get_job(job["id"]))["status"] == "CANCELLED"


async def test_delete_cancelled_job_deletes_it(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    path = f"{JOBS}/{job['id']}"
    assert await aep.call("DELETE", path, status=200, schema="export-job.cancel.response") == CANCELLING
    assert await aep.call("DELETE", path, status=200, schema="export-job.cancel.response") == DELETED
    await aep.call("GET", path, status=404, schema="error.ups")


@pytest.mark.parametrize("scenario", ["success", "failure"])
async def test_delete_finished_job_deletes_it(aep: Aep, scenario: str) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": scenario})
    path = f"{JOBS}/{job['id']}"
    await aep.get_job(job["id"])
    finished = await aep.get_job(job["id"])
    assert finished["status"] in ("SUCCEEDED", "FAILED")
    assert await aep.call("DELETE", path, status=200, schema="export-job.cancel.response") == DELETED
    await aep.call("GET", path, status=404, schema="error.ups")
    await aep.call("DELETE", path, status=404, schema="error.ups")
    listed = await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
    assert listed["records"] == []
    # The data it wrote stays, as data written to a dataset does.
    batch_id = job["destination"]["batchId"]
    await aep.call("GET", f"{BATCHES}/{batch_id}", status=200, schema="batch.map.response")


async def test_delete_unknown_job_is_404(aep: Aep) -> None:
    error = await aep.call("DELETE", f"{JOBS}/31337", status=404, schema="error.ups")
    assert "31337" in error["errors"]["404"][0]["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", f"{JOBS}/1", {"GET", "DELETE"}),
        ("PATCH", f"{JOBS}/1", {"GET", "DELETE"}),
        ("POST", f"{JOBS}/1", {"GET", "DELETE"}),
        ("PUT", JOBS, {"GET", "POST"}),
        ("DELETE", JOBS, {"GET", "POST"}),
        ("PATCH", JOBS, {"GET", "POST"}),
    ],
)
async def test_other_methods_are_405_with_allow(aep: Aep, method: str, path: str, allowed: set[str]) -> None:
    dataset_id = await aep.create_dataset()
    await aep.create_job(dataset_id)
    response = await aep.client.request(method, path, json={}, headers=aep.headers())
    assert response.status == 405
    assert response.content_type == "application/json"
    error = await response.json()
    assert_matches("error.ups", error)
    assert error["status"] == 405
    assert set(response.headers["Allow"].split(", ")) == allowed
    # The job is untouched.
    assert (await aep.get_job(1))["status"] == "PROCESSING"


async def test_forced_status_shows_on_get(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    await aep.advance(1)
    errors = [{"code": "0100000003", "msg": "Error in Export Job", "callStack": "Logger"}]
    response = await aep.client.post(
        f"/_emulator/jobs/{job['id']}/force", json={"status": "FAILED", "errors": errors}
    )
    forced = await response.json()
    assert response.status == 200, forced
    assert_matches("control.job.response", forced)
    shown = await aep.get_job(job["id"])
    assert shown["status"] == "FAILED"
    assert shown["errors"] == errors
    assert shown["updateTime"] == START_MS + 1000
    assert forced["job"] == shown
    assert_timing_consistent(shown)


async def test_ids_increase(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    ids = [(await aep.create_job(dataset_id))["id"] for _ in range(3)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
