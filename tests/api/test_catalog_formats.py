"""Dataset `fileDescription.format` (catalog.yaml's `format` enum) and what an export into each writes;
Adobe's own JSON media types on request bodies."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Aep

DATASETS = "/data/foundation/catalog/dataSets"
JOBS = "/data/core/ups/export/jobs"
FILES = "/data/foundation/export"


async def file_content_type(aep: Aep, job: dict[str, object]) -> str:
    for _ in range(2):
        job = await aep.get_job(int(job["id"]))  # type: ignore[call-overload]
    assert job["status"] == "SUCCEEDED"
    batch_id = job["destination"]["batchId"]  # type: ignore[index]
    files = await aep.call("GET", f"{FILES}/batches/{batch_id}/files", status=200, schema=None)
    file_id = files["data"][0]["dataSetFileId"]
    listing = await aep.call("GET", f"{FILES}/files/{file_id}", status=200, schema=None)
    name = listing["data"][0]["name"]
    response = await aep.client.get(f"{FILES}/files/{file_id}", params={"path": name}, headers=aep.headers())
    assert response.status == 200
    return response.content_type


@pytest.mark.parametrize(
    ("fmt", "written"),
    [("", "application/parquet"), ("parquet", "application/parquet"), ("delta", "application/parquet"),
     ("json", "application/x-ndjson")],
)  # fmt: skip
async def test_formats_an_export_can_write(aep: Aep, fmt: str, written: str) -> None:
    dataset_id = await aep.create_dataset(fileDescription={"persisted": True, "format": fmt})
    shown = await aep.call("GET", f"{DATASETS}/{dataset_id}", status=200, schema="dataset.map.response")
    assert shown[dataset_id]["fileDescription"]["format"] == fmt
    assert await file_content_type(aep, await aep.create_job(dataset_id)) == written


@pytest.mark.parametrize("fmt", ["csv", "text", "sequencefile", "avro"])
async def test_other_formats_are_accepted_and_an_export_into_them_is_a_clear_400(aep: Aep, fmt: str) -> None:
    # catalog.yaml's `format` enum: "", csv, text, parquet, json, sequencefile, avro. A dataset of any of
    # them can be created; an export job into one the emulator cannot write is refused when created.
    dataset_id = await aep.create_dataset(fileDescription={"format": fmt})
    error = await aep.call(
        "POST",
        JOBS,
        json={"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}},
        status=400,
        schema="error.ups",
    )
    message = error["errors"]["400"][0]["message"]
    assert f"'{fmt}'" in message and dataset_id in message and "Parquet or JSON Lines" in message
    jobs = await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
    assert jobs["records"] == []


async def test_unknown_format_is_a_validation_error(aep: Aep) -> None:
    body = {"name": "x", "fileDescription": {"format": "xlsx"}}
    error = await aep.call("POST", DATASETS, json=body, status=400, schema="error.problem")
    assert "fileDescription.format" in error["detail"]


@pytest.mark.parametrize(
    "content_type",
    ["application/vnd.adobe.xed+json", "application/vnd.adobe.xdm+json; charset=utf-8",
     "application/vnd.adobe.xed-full+json;version=1"],
)  # fmt: skip
async def test_adobe_json_media_types_are_read_as_json(aep: Aep, content_type: str) -> None:
    response = await aep.client.post(
        DATASETS, data=b'{"name": "vendor typed"}', headers=aep.headers(**{"Content-Type": content_type})
    )
    assert response.status == 201, await response.text()
    dataset_id = (await response.json())[0].rsplit("/", 1)[1]
    job = await aep.client.post(
        JOBS,
        data=json.dumps(
            {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
        ),
        headers=aep.headers(**{"Content-Type": content_type}),
    )
    assert job.status == 200, await job.text()


@pytest.mark.parametrize("content_type", ["text/plain", "application/vnd.other+json", "application/xml"])
async def test_other_media_types_still_fail_the_gateway(aep: Aep, content_type: str) -> None:
    response = await aep.client.post(
        DATASETS, data=b'{"name": "x"}', headers=aep.headers(**{"Content-Type": content_type})
    )
    assert response.status == 400
    assert (await response.json())["detail"] == "A valid content-type must be specified"
