"""Membership drives the data: an export of a defined segment holds exactly the profiles its PQL selects,
in its rows, its segmentMembership, its per-segment batches and the job's counters; a segment id without a
definition (or outside the subset) keeps the hash membership."""

from __future__ import annotations

import io
from typing import Any

import pyarrow.parquet as pq
from aiohttp.test_utils import TestClient

from tests.conftest import Aep

DEFINITIONS = "/data/core/ups/segment/definitions"
SEGMENT_JOBS = "/data/core/ups/segment/jobs"
EXPORT = "/data/foundation/export"


async def define(aep: Aep, value: str, name: str | None = None) -> str:
    body = {
        "name": name or value,
        "expression": {"type": "PQL", "format": "pql/text", "value": value},
        "schema": {"name": "_xdm.context.profile"},
    }
    return str((await aep.call("POST", DEFINITIONS, json=body, status=200, schema=None))["id"])


async def finished(aep: Aep, job: Any) -> Any:
    while job["status"] not in ("SUCCEEDED", "FAILED"):
        job = await aep.get_job(job["id"])
    return job


async def rows(aep: Aep, client: TestClient[Any, Any], batch_id: str) -> list[dict[str, Any]]:
    listing = await aep.call("GET", f"{EXPORT}/batches/{batch_id}/files", status=200, schema=None)
    found: list[dict[str, Any]] = []
    for entry in listing["data"]:
        file_id = entry["dataSetFileId"]
        files = await aep.call("GET", f"{EXPORT}/files/{file_id}", status=200, schema=None)
        for one in files["data"]:
            response = await client.get(
                f"{EXPORT}/files/{file_id}", params={"path": one["name"]}, headers=aep.headers()
            )
            found += pq.read_table(io.BytesIO(await response.read())).to_pylist()
    return found


def membership(row: dict[str, Any], segment: str) -> Any:
    namespaces = dict(row.get("segmentMembership") or [])
    return dict(namespaces.get("ups") or []).get(segment)


async def test_an_export_of_a_defined_segment_holds_only_its_members(
    aep: Aep, client: TestClient[Any, Any]
) -> None:
    berlin = await define(
        aep, 'homeAddress.city = "Berlin" or homeAddress.countryCode = "FR"', "Berlin or France"
    )
    job = await aep.create_job(await aep.create_dataset(), filter={"segments": [{"segmentId": berlin}]})
    done = await finished(aep, job)
    exported = await rows(aep, client, done["destination"]["batchId"])
    assert exported, "the segment has members"
    for row in exported:
        address = row["homeAddress"]
        assert address["city"] == "Berlin" or address["countryCode"] == "FR"
        assert membership(row, berlin)["status"] in ("realized", "existing")
    assert done["metrics"]["totalExportedProfileCounter"] == len(exported)
    # The segment job counts the same people.
    segment_job = await aep.call("POST", SEGMENT_JOBS, json=[{"segmentId": berlin}], status=200, schema=None)
    for _ in range(3):
        segment_job = await aep.call("GET", f"{SEGMENT_JOBS}/{segment_job['id']}", status=200, schema=None)
    assert segment_job["metrics"]["segmentedProfileCounter"][berlin] == len(exported)
    by_namespace = segment_job["metrics"]["segmentedProfileByNamespaceCounter"][berlin]
    assert by_namespace == done["metrics"]["exportedProfileByNamespaceCounter"]


async def test_event_conditions_select_by_the_profiles_events(aep: Aep, client: TestClient[Any, Any]) -> None:
    buyers = await define(aep, 'xEvent[eventType = "commerce.purchases"].count() >= 2', "buyers")
    job = await aep.create_job(
        await aep.create_dataset(),
        filter={"segments": [{"segmentId": buyers}]},
        additionalFields={"eventList": {"fields": "eventType"}},
    )
    exported = await rows(aep, client, (await finished(aep, job))["destination"]["batchId"])
    assert exported
    for row in exported:
        assert sum(1 for event in row["eventList"] if event["eventType"] == "commerce.purchases") >= 2


async def test_segment_per_batch_and_statuses_follow_the_definitions(
    aep: Aep, client: TestClient[Any, Any]
) -> None:
    germans = await define(aep, 'homeAddress.countryCode = "DE"')
    britons = await define(aep, 'homeAddress.countryCode = "GB"')
    job = await aep.create_job(
        await aep.create_dataset(),
        filter={
            "segments": [
                {"segmentId": germans, "status": ["realized"]},
                {"segmentId": britons},
                {"segmentId": germans, "status": ["exited"]},
            ]
        },
        destination={"datasetId": await aep.create_dataset(), "segmentPerBatch": True},
    )
    done = await finished(aep, job)
    realized, british, exited = (b["batchId"] for b in done["destination"]["batches"])
    realized_rows = await rows(aep, client, realized)
    assert realized_rows and all(r["homeAddress"]["countryCode"] == "DE" for r in realized_rows)
    assert all(membership(r, germans)["status"] == "realized" for r in realized_rows)
    british_rows = await rows(aep, client, british)
    assert british_rows and all(r["homeAddress"]["countryCode"] == "GB" for r in british_rows)
    assert await rows(aep, client, exited) == []  # the population does not change: nobody exits
    total = len(realized_rows) + len(british_rows)
    assert done["metrics"]["totalExportedProfileCounter"] == total


async def test_ids_without_an_evaluated_definition_keep_the_hash(
    aep: Aep, client: TestClient[Any, Any]
) -> None:
    outside = await define(aep, 'workAddress.country = "US"')
    dataset = await aep.create_dataset()
    for segment in ("never-defined", outside):
        job = await aep.create_job(dataset, filter={"segments": [{"segmentId": segment}]})
        exported = await rows(aep, client, (await finished(aep, job))["destination"]["batchId"])
        countries = {r["homeAddress"]["countryCode"] for r in exported}
        assert len(countries) > 1  # anyone: the hash decides
        assert all(membership(r, segment)["status"] in ("realized", "existing") for r in exported)


async def test_a_job_keeps_the_definition_it_was_created_with(aep: Aep, client: TestClient[Any, Any]) -> None:
    segment = await define(aep, 'homeAddress.countryCode = "DE"')
    job = await aep.create_job(await aep.create_dataset(), filter={"segments": [{"segmentId": segment}]})
    await aep.call(
        "PATCH", f"{DEFINITIONS}/{segment}",
        json={"expression": {"type": "PQL", "format": "pql/text", "value": 'homeAddress.countryCode = "US"'}},
        status=200, schema=None,
    )  # fmt: skip
    await aep.call("DELETE", f"{DEFINITIONS}/{segment}", status=200, schema=None)
    exported = await rows(aep, client, (await finished(aep, job))["destination"]["batchId"])
    assert exported and {r["homeAddress"]["countryCode"] for r in exported} == {"DE"}
