"""The oracle itself: `Contract.check` refuses each way a reply can break the document, and accepts one that
keeps it; drift mode's relaxed contract accepts unknown fields and nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from multidict import CIMultiDict

from tests.contract.support import Contract, Reply, document

GOOD_JOB = {
    "id": 7,
    "jobType": "BATCH",
    "destination": {"datasetId": "ds1", "segmentPerBatch": False, "batchId": "b1"},
    "schema": {"name": "_xdm.context.profile"},
    "imsOrgId": "ORG@AdobeOrg",
    "status": "NEW",
    "profileInstanceId": "ups",
    "metrics": {"totalTime": {"startTimeInMs": 1}},
    "computeGatewayJobId": {},
    "creationTime": 1,
    "updateTime": 1,
    "requestId": "r",
}


def reply(status: int, body: Any, method: str = "POST", **headers: str) -> Reply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = CIMultiDict({"Content-Type": "application/json", **headers})
    return Reply(method, "/data/core/ups/export/jobs", status, all_headers, raw)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract(document())


def test_a_reply_that_keeps_the_contract_passes(contract: Contract) -> None:
    contract.check("createExportJob", reply(200, GOOD_JOB, **{"X-Location": "/data/core/ups/export/jobs/7"}))


@pytest.mark.parametrize(
    ("operation", "bad", "complaint"),
    [
        (
            "createExportJob",
            reply(201, GOOD_JOB, **{"X-Location": "/data/core/ups/export/jobs/7"}),
            "not documented",
        ),
        ("createExportJob", reply(200, GOOD_JOB), "header X-Location is missing"),
        ("createExportJob", reply(200, GOOD_JOB, **{"X-Location": "/elsewhere"}), "header X-Location"),
        (
            "createExportJob",
            reply(200, {**GOOD_JOB, "status": "DONE"}, **{"X-Location": "/data/core/ups/export/jobs/7"}),
            "'DONE' is not one of",
        ),
        (
            "createExportJob",
            reply(200, {**GOOD_JOB, "dataSetId": "x"}, **{"X-Location": "/data/core/ups/export/jobs/7"}),
            "Additional properties",
        ),
        (
            "createExportJob",
            reply(
                200, b"<html>", **{"X-Location": "/data/core/ups/export/jobs/7", "Content-Type": "text/html"}
            ),
            "content type 'text/html'",
        ),
        (
            "getExportJob",
            reply(404, {"error_code": "403010", "message": "Oauth token is missing."}),
            "x-request-id",
        ),
        (
            "headFile",
            reply(404, {"detail": "x"}, method="HEAD", **{"x-request-id": "r"}),
            "a body where none",
        ),
    ],
)
def test_each_way_of_breaking_the_contract_fails(
    contract: Contract, operation: str, bad: Reply, complaint: str
) -> None:
    with pytest.raises(AssertionError, match=complaint):
        contract.check(operation, bad)


def test_drift_tolerates_unknown_fields_only() -> None:
    relaxed = Contract(document(), relaxed=True)
    headers = {"X-Location": "/data/core/ups/export/jobs/7"}
    relaxed.check("createExportJob", reply(200, {**GOOD_JOB, "sandboxId": "s1"}, **headers))
    missing = {k: v for k, v in GOOD_JOB.items() if k != "requestId"}
    with pytest.raises(AssertionError, match="'requestId' is a required property"):
        relaxed.check("createExportJob", reply(200, missing, **headers))
    with pytest.raises(AssertionError, match="is not of type 'integer'"):
        relaxed.check("createExportJob", reply(200, {**GOOD_JOB, "id": "7"}, **headers))
