"""Catalog Service: datasets (create, list, get) and the batches export jobs write into them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ORG, PROFILE_UNION, START_MS, Aep, assert_matches

DATASETS = "/data/foundation/catalog/dataSets"
BATCHES = "/data/foundation/catalog/batches"
JOBS = "/data/core/ups/export/jobs"
XED = "application/vnd.adobe.xed+json;version=1"

# Every field of Catalog's dataSetRequest that the create-request schema knows.
FULL_BODY: dict[str, Any] = {
    "name": "Profile export target",
    "description": "where the nightly profile export lands",
    "schemaRef": {"id": PROFILE_UNION, "contentType": XED},
    "tags": {"unifiedProfile": ["enabled: true"], "team": ["crm", "nightly"]},
    "fileDescription": {"persisted": True, "containerFormat": "parquet", "format": "parquet"},
    "enableErrorDiagnostics": True,
    "observableSchema": {"type": "object", "meta:xdmType": "object"},
    "basePath": "/export/profiles",
    "dataSourceId": 4242,
    "aspect": "production",
}


async def create(aep: Aep, body: dict[str, Any], query: str = "") -> str:
    response = await aep.client.post(f"{DATASETS}{query}", json=body, headers=aep.headers())
    created = await response.json()
    assert response.status == 201, created
    assert_matches("dataset.create.response", created)
    dataset_id = created[0].removeprefix("@/dataSets/")
    assert response.headers["Location"] == f"{DATASETS}/{dataset_id}"
    return str(dataset_id)


async def test_create_returns_201_location_and_reference(aep: Aep) -> None:
    dataset_id = await create(aep, {"name": "plain", "schemaRef": {"id": PROFILE_UNION, "contentType": XED}})
    # The Location header points at a dataset that can be read back.
    shown = await aep.call("GET", f"{DATASETS}/{dataset_id}", status=200, schema="dataset.map.response")
    assert list(shown) == [dataset_id]


async def test_created_ids_are_distinct(aep: Aep) -> None:
    ids = {await create(aep, {"name": f"dataset {n}"}) for n in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "false", "False"])
async def test_request_data_source_is_accepted(aep: Aep, value: str) -> None:
    await create(aep, {"name": "with query"}, f"?requestDataSource={value}")


async def test_request_data_source_must_be_boolean(aep: Aep) -> None:
    error = await aep.call(
        "POST", f"{DATASETS}?requestDataSource=maybe", json={"name": "x"}, status=400, schema="error.problem"
    )
    assert "requestDataSource" in error["detail"]
    assert error["title"] == "BadRequestError"


async def test_full_documented_body_is_kept(aep: Aep) -> None:
    dataset_id = await create(aep, FULL_BODY)
    dataset = (await aep.call("GET", f"{DATASETS}/{dataset_id}", status=200, schema="dataset.map.response"))[
        dataset_id
    ]
    for field in (
        "name",
        "description",
        "schemaRef",
        "fileDescription",
        "enableErrorDiagnostics",
        "observableSchema",
        "basePath",
        "dataSourceId",
        "aspect",
    ):
        assert dataset[field] == FULL_BODY[field], field
    # The client's tags are kept; Query Service's table tag is added as AEP does.
    assert dataset["tags"] == {**FULL_BODY["tags"], "adobe/pqs/table": ["profile_export_target"]}
    assert dataset["classification"] == {"dataBehavior": "record", "managedBy": "CUSTOMER"}
    assert dataset["imsOrg"] == ORG
    assert dataset["sandboxName"] == "prod"
    assert dataset["created"] == dataset["updated"] == START_MS
    assert dataset["createdClient"] == "test-client"
    assert dataset["viewId"] == dataset_id
    assert dataset["files"] == f"@/dataSetFiles?dataSetId={dataset_id}"


async def test_minimal_dataset_gets_defaults(aep: Aep) -> None:
    dataset_id = await create(aep, {"name": "minimal"})
    dataset = (await aep.call("GET", f"{DATASETS}/{dataset_id}", status=200, schema="dataset.map.response"))[
        dataset_id
    ]
    assert dataset["fileDescription"] == {"persisted": True, "format": "parquet"}
    assert dataset["description"] == ""
    assert dataset["enableErrorDiagnostics"] is False
    assert dataset["tags"] == {"adobe/pqs/table": ["minimal"]}


async def test_list_is_keyed_by_id(aep: Aep) -> None:
    ids = [await create(aep, {"name": f"dataset {n}"}) for n in range(3)]
    listed = await aep.call("GET", DATASETS, status=200, schema="dataset.map.response")
    assert list(listed) == ids
    assert [listed[i]["name"] for i in ids] == ["dataset 0", "dataset 1", "dataset 2"]


async def test_list_when_empty(aep: Aep) -> None:
    assert await aep.call("GET", DATASETS, status=200, schema="dataset.map.response") == {}


async def test_list_limit_and_start(aep: Aep) -> None:
    ids = [await create(aep, {"name": f"dataset {n}"}) for n in range(5)]
    page = await aep.call("GET", f"{DATASETS}?limit=2", status=200, schema="dataset.map.response")
    assert list(page) == ids[:2]
    page = await aep.call("GET", f"{DATASETS}?limit=2&start=2", status=200, schema="dataset.map.response")
    assert list(page) == ids[2:4]
    page = await aep.call("GET", f"{DATASETS}?start=4", status=200, schema="dataset.map.response")
    assert list(page) == ids[4:]
    page = await aep.call("GET", f"{DATASETS}?start=99", status=200, schema="dataset.map.response")
    assert page == {}


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=ten", "start=-1", "start=x"])
async def test_list_rejects_bad_numbers(aep: Aep, query: str) -> None:
    error = await aep.call("GET", f"{DATASETS}?{query}", status=400, schema="error.problem")
    assert query.split("=")[0] in error["detail"]


async def test_list_properties_projects_fields(aep: Aep) -> None:
    first = await create(aep, FULL_BODY)
    second = await create(aep, {"name": "other"})
    listed = await aep.call(
        "GET", f"{DATASETS}?properties=name,tags", status=200, schema="dataset.map.projected.response"
    )
    assert listed == {
        first: {
            "name": FULL_BODY["name"],
            "tags": {**FULL_BODY["tags"], "adobe/pqs/table": ["profile_export_target"]},
        },
        second: {"name": "other", "tags": {"adobe/pqs/table": ["other"]}},
    }


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("asc:name", ["alpha", "bravo", "charlie"]),
        ("desc:name", ["charlie", "bravo", "alpha"]),
        ("name", ["alpha", "bravo", "charlie"]),
        ("desc:created", ["alpha", "charlie", "bravo"]),
        ("asc:created", ["bravo", "charlie", "alpha"]),
    ],
)
async def test_list_order_by(aep: Aep, order_by: str, expected: list[str]) -> None:
    for name in ("bravo", "charlie", "alpha"):
        await create(aep, {"name": name})
        await aep.advance(1)
    listed = await aep.call(
        "GET", f"{DATASETS}?orderBy={order_by}", status=200, schema="dataset.map.response"
    )
    assert [d["name"] for d in listed.values()] == expected


@pytest.mark.parametrize("order_by", ["sideways:name", "asc:colour", "asc:", "1"])
async def test_list_rejects_bad_order_by(aep: Aep, order_by: str) -> None:
    error = await aep.call("GET", f"{DATASETS}?orderBy={order_by}", status=400, schema="error.problem")
    assert order_by in error["detail"]


async def test_list_name_filter(aep: Aep) -> None:
    await create(aep, {"name": "keep"})
    await create(aep, {"name": "skip"})
    listed = await aep.call("GET", f"{DATASETS}?name=keep", status=200, schema="dataset.map.response")
    assert [d["name"] for d in listed.values()] == ["keep"]


async def test_get_with_properties(aep: Aep) -> None:
    dataset_id = await create(aep, FULL_BODY)
    shown = await aep.call(
        "GET",
        f"{DATASETS}/{dataset_id}?properties=schemaRef,fileDescription",
        status=200,
        schema="dataset.map.projected.response",
    )
    assert shown == {
        dataset_id: {"schemaRef": FULL_BODY["schemaRef"], "fileDescription": FULL_BODY["fileDescription"]}
    }


@pytest.mark.parametrize("dataset_id", ["5c8c3c555033b814b69f947f", "unknown", "0"])
async def test_get_unknown_dataset_is_404(aep: Aep, dataset_id: str) -> None:
    error = await aep.call("GET", f"{DATASETS}/{dataset_id}", status=404, schema="error.problem")
    assert error["title"] == "NotFoundError"
    assert error["status"] == 404
    assert dataset_id in error["detail"]


async def test_batches_of_an_export_job(aep: Aep) -> None:
    dataset_id = await create(aep, {"name": "target"})
    other_dataset = await create(aep, {"name": "other"})
    job = await aep.create_job(dataset_id)
    await aep.create_job(other_dataset)
    batch_id = job["destination"]["batchId"]

    batches = await aep.call(
        "GET", f"{BATCHES}?dataSet={dataset_id}", status=200, schema="batch.map.response"
    )
    assert list(batches) == [batch_id]
    batch = batches[batch_id]
    assert batch["status"] == "processing"
    assert batch["relatedObjects"] == [{"type": "dataSet", "id": dataset_id}]
    assert batch["imsOrg"] == ORG
    assert batch["created"] == job["creationTime"]
    assert "completed" not in batch

    all_batches = await aep.call("GET", BATCHES, status=200, schema="batch.map.response")
    assert len(all_batches) == 2

    # Two polls take the default scenario to SUCCEEDED; the batch follows in lowercase.
    await aep.get_job(job["id"])
    finished = await aep.get_job(job["id"])
    assert finished["status"] == "SUCCEEDED"
    shown = await aep.call("GET", f"{BATCHES}/{batch_id}", status=200, schema="batch.map.response")
    assert shown[batch_id]["status"] == "success"
    assert shown[batch_id]["completed"] == finished["updateTime"]


async def test_batch_of_a_failed_job_is_failed(aep: Aep) -> None:
    dataset_id = await create(aep, {"name": "target"})
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "failure"})
    await aep.get_job(job["id"])
    failed = await aep.get_job(job["id"])
    assert failed["status"] == "FAILED"
    batch_id = failed["destination"]["batchId"]
    batch = (await aep.call("GET", f"{BATCHES}/{batch_id}", status=200, schema="batch.map.response"))[
        batch_id
    ]
    assert batch["status"] == "failed"
    assert [e["code"] for e in batch["errors"]] == [e["code"] for e in failed["errors"]]


async def test_batch_properties_and_status_filter(aep: Aep) -> None:
    dataset_id = await create(aep, {"name": "target"})
    done = await aep.create_job(dataset_id)
    await aep.get_job(done["id"])
    await aep.get_job(done["id"])
    live = await aep.create_job(dataset_id)
    processing = await aep.call(
        "GET",
        f"{BATCHES}?status=processing&properties=status",
        status=200,
        schema="batch.map.projected.response",
    )
    assert processing == {live["destination"]["batchId"]: {"status": "processing"}}


async def test_unknown_batch_is_404(aep: Aep) -> None:
    error = await aep.call("GET", f"{BATCHES}/nosuchbatch", status=404, schema="error.problem")
    assert error["title"] == "NotFoundError"
    assert "nosuchbatch" in error["detail"]


async def test_batch_list_filters_by_creation_time(aep: Aep) -> None:
    dataset_id = await create(aep, {"name": "target"})
    early = await aep.create_job(dataset_id)
    await aep.advance(60)
    late = await aep.create_job(dataset_id)
    after = await aep.call(
        "GET", f"{BATCHES}?createdAfter={START_MS}", status=200, schema="batch.map.response"
    )
    assert list(after) == [late["destination"]["batchId"]]
    before = await aep.call(
        "GET", f"{BATCHES}?createdBefore={START_MS + 1}", status=200, schema="batch.map.response"
    )
    assert list(before) == [early["destination"]["batchId"]]
    newest_first = await aep.call(
        "GET", f"{BATCHES}?orderBy=desc:created&limit=1", status=200, schema="batch.map.response"
    )
    assert list(newest_first) == [late["destination"]["batchId"]]
