"""Every request body example in Adobe's export-path docs is accepted, and answered in the documented shape.

The bodies are transcribed from the docs named on each, with their JSON mistakes fixed (PROF-DOC's create
example lacks a comma before "destination") and the placeholder dataset id replaced by a real one.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import DEFAULT_MERGE_POLICY, PROFILE_UNION, Aep, assert_matches

DATASETS = "/data/foundation/catalog/dataSets"
JOBS = "/data/core/ups/export/jobs"
XED = "application/vnd.adobe.xed+json;version=1"
PLACEHOLDER = "{DATASET_ID}"

# (doc, query string, body) for each dataset-creation example.
DATASET_EXAMPLES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "profile-api/export-jobs.md",
        "",
        {"name": "Profile Data Export", "schemaRef": {"id": PROFILE_UNION, "contentType": XED}},
    ),
    (
        "segmentation-tutorials/evaluate-a-segment.md",
        "",
        {"name": "Segment Export", "schemaRef": {"id": PROFILE_UNION, "contentType": XED}},
    ),
    (
        "segmentation-tutorials/evaluate-a-segment.legacy-export-excerpt.md",
        "",
        {
            "name": "Segment Export",
            "schemaRef": {"id": PROFILE_UNION, "contentType": XED},
            "fileDescription": {"persisted": True, "containerFormat": "parquet", "format": "parquet"},
        },
    ),
    (
        "catalog/create-dataset.md",
        "?requestDataSource=true",
        {
            "name": "LoyaltyMembersDataset",
            "schemaRef": {
                "id": "https://ns.adobe.com/acme/schemas/719c4e19184402c27595e65b931a142b",
                "contentType": XED,
            },
        },
    ),
]

EVENT_LIST = {
    "fields": "environment.browserDetails.name,environment.browserDetails.version",
    "filter": {"fromIngestTimestamp": "2018-10-25T13:22:04-07:00"},
}

# (doc, body) for each export-job creation example.
JOB_EXAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "profile-api/export-jobs.md (create)",
        {
            "fields": "identities.id,personalEmail.address",
            "mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 1},
            "additionalFields": {"eventList": EVENT_LIST},
            "destination": {"datasetId": PLACEHOLDER, "segmentPerBatch": False},
            "schema": {"name": "_xdm.context.profile"},
        },
    ),
    (
        "profile-api/export-jobs.md (profile attributes only)",
        {
            "fields": "identities.id,personalEmail.address",
            "mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 1},
            "destination": {"datasetId": PLACEHOLDER, "segmentPerBatch": False},
            "schema": {"name": "_xdm.context.profile"},
        },
    ),
    (
        "profile-api/export-jobs.md (events only)",
        {
            "fields": "identityMap",
            "mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 1},
            "additionalFields": {"eventList": EVENT_LIST},
            "destination": {"datasetId": PLACEHOLDER, "segmentPerBatch": False},
            "schema": {"name": "_xdm.context.profile"},
        },
    ),
    (
        "segmentation-api/export-jobs.md (create)",
        {
            "fields": "identities.id,personalEmail.address",
            "mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 1},
            "filter": {
                "segments": [
                    {
                        "segmentId": "52c26d0d-45f2-47a2-ab30-ed06abc981ff",
                        "segmentNs": "ups",
                        "status": ["realized"],
                    }
                ],
                "segmentQualificationTime": {
                    "startTime": "2018-01-01T00:00:00Z",
                    "endTime": "2018-02-01T00:00:00Z",
                },
                "fromIngestTimestamp": "2018-01-01T00:00:00Z",
                "emptyProfiles": True,
            },
            "additionalFields": {
                "eventList": {
                    "fields": "string",
                    "filter": {
                        "fromIngestTimestamp": "2018-01-01T00:00:00Z",
                        "toIngestTimestamp": "2020-01-01T00:00:00Z",
                    },
                }
            },
            "destination": {"datasetId": PLACEHOLDER, "segmentPerBatch": False},
            "schema": {"name": "_xdm.context.profile"},
            "evaluationInfo": {"segmentation": True},
        },
    ),
    (
        "segmentation-tutorials/evaluate-a-segment.legacy-export-excerpt.md (create, one batch per segment)",
        {
            "fields": "identities.id,personalEmail.address",
            "mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 1},
            "filter": {
                "segments": [
                    {
                        "segmentId": "4edc8488-2c35-4f6d-b4c6-9075c68d2df4",
                        "segmentNs": "AAM",
                        "status": ["realized"],
                    },
                    {
                        "segmentId": "1rfe8422-334d-12f4-3sd4-12cf6g990g51",
                        "segmentNs": "UPS",
                        "status": ["exited"],
                    },
                ],
                "segmentQualificationTime": {
                    "startTime": "2019-09-01T00:00:00Z",
                    "endTime": "2019-09-02T00:00:00Z",
                },
                "fromIngestTimestamp": "2018-10-25T13:22:04-07:00",
                "emptyProfiles": False,
            },
            "additionalFields": {"eventList": EVENT_LIST},
            "destination": {"datasetId": PLACEHOLDER, "segmentPerBatch": True},
            "schema": {"name": "_xdm.context.profile"},
        },
    ),
]

# Top-level fields the docs' examples show on a job just created (reading their dataSetId as datasetId).
DOCUMENTED_CREATE_FIELDS = {
    "id",
    "jobType",
    "destination",
    "schema",
    "imsOrgId",
    "status",
    "mergePolicy",
    "profileInstanceId",
    "metrics",
    "computeGatewayJobId",
    "creationTime",
    "updateTime",
    "requestId",
}


@pytest.mark.parametrize(("doc", "query", "body"), DATASET_EXAMPLES, ids=[e[0] for e in DATASET_EXAMPLES])
async def test_dataset_examples_are_accepted(aep: Aep, doc: str, query: str, body: dict[str, Any]) -> None:
    created = await aep.call(
        "POST", f"{DATASETS}{query}", json=body, status=201, schema="dataset.create.response"
    )
    dataset_id = created[0].removeprefix("@/dataSets/")
    shown = await aep.call("GET", f"{DATASETS}/{dataset_id}", status=200, schema="dataset.map.response")
    for field, value in body.items():
        assert shown[dataset_id][field] == value, field


@pytest.mark.parametrize(("doc", "example"), JOB_EXAMPLES, ids=[e[0] for e in JOB_EXAMPLES])
async def test_export_job_examples_are_accepted(aep: Aep, doc: str, example: dict[str, Any]) -> None:
    dataset_id = await aep.create_dataset()
    body = copy.deepcopy(example)
    body["destination"]["datasetId"] = dataset_id
    created = await aep.call("POST", JOBS, json=body, status=200, schema="export-job.response")

    assert created["status"] == "NEW"
    assert set(created) >= DOCUMENTED_CREATE_FIELDS
    for field in ("fields", "mergePolicy", "filter", "additionalFields", "schema", "evaluationInfo"):
        assert created.get(field) == body.get(field), field
    destination = created["destination"]
    assert destination["datasetId"] == dataset_id
    if body["destination"]["segmentPerBatch"]:
        assert [
            {k: b[k] for k in ("segmentId", "segmentNs", "status")} for b in destination["batches"]
        ] == body["filter"]["segments"]
    else:
        assert destination["batchId"]

    # Polled to the end, the job has the fields of the docs' SUCCEEDED examples.
    await aep.get_job(created["id"])
    done = await aep.get_job(created["id"])
    assert done["status"] == "SUCCEEDED"
    assert set(done["metrics"]) >= {"totalTime", "profileExportTime", "aCPDatasetWriteTime"}
    assert set(done["computeGatewayJobId"]) == {"exportJob", "pushJob"}

    listed = await aep.call("GET", f"{JOBS}/", status=200, schema="export-job.list.response")
    assert [job["id"] for job in listed["records"]] == [created["id"]]
    assert listed["records"][0] == done


@pytest.mark.parametrize(("doc", "example"), JOB_EXAMPLES[:1], ids=[JOB_EXAMPLES[0][0]])
async def test_cancel_answer_matches_the_documented_body(aep: Aep, doc: str, example: dict[str, Any]) -> None:
    dataset_id = await aep.create_dataset()
    body = copy.deepcopy(example)
    body["destination"]["datasetId"] = dataset_id
    created = await aep.call("POST", JOBS, json=body, status=200, schema="export-job.response")
    answer = await aep.call(
        "DELETE", f"{JOBS}/{created['id']}", status=200, schema="export-job.cancel.response"
    )
    assert answer == {"status": True, "message": "Export job has been marked for cancelling"}


def test_examples_match_the_request_schema() -> None:
    # The transcriptions themselves are valid requests (so a rejection above is the emulator's fault).
    for _, example in JOB_EXAMPLES:
        body = copy.deepcopy(example)
        body["destination"]["datasetId"] = "5b020a27e7040801dedba61b"
        assert_matches("export-job.create.request", body)
    for _, _, dataset in DATASET_EXAMPLES:
        assert_matches("dataset.create.request", dataset)
