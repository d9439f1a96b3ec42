"""Tenancy: state is partitioned by (IMS org, sandbox); another tenant sees 404 and empty lists."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import ORG, OTHER_ORG, Aep

JOBS = "/data/core/ups/export/jobs"
DATASETS = "/data/foundation/catalog/dataSets"
BATCHES = "/data/foundation/catalog/batches"

# Same org in another sandbox, another org in the same sandbox, another org in another sandbox.
STRANGERS = [(ORG, "dev"), (OTHER_ORG, "prod"), (OTHER_ORG, "dev")]


async def owned_state(owner: Aep) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A dataset, a live job with a batch per segment and a finished job, all of `owner`."""
    dataset_id = await owner.create_dataset()
    live = await owner.create_job(
        dataset_id,
        filter={"segments": [{"segmentId": "a"}, {"segmentId": "b"}]},
        destination={"datasetId": dataset_id, "segmentPerBatch": True},
    )
    finished = await owner.create_job(dataset_id)
    await owner.get_job(finished["id"])
    assert (await owner.get_job(finished["id"]))["status"] == "SUCCEEDED"
    return dataset_id, live, finished


def batch_ids(job: dict[str, Any]) -> list[str]:
    destination = job["destination"]
    return [b["batchId"] for b in destination.get("batches", [])] or [destination["batchId"]]


@pytest.mark.parametrize(("org", "sandbox"), STRANGERS)
async def test_strangers_get_404_for_every_object(
    client: TestClient[Any, Any], org: str, sandbox: str
) -> None:
    owner = Aep(client)
    stranger = Aep(client, org=org, sandbox=sandbox)
    dataset_id, live, finished = await owned_state(owner)

    for job in (live, finished):
        await stranger.call("GET", f"{JOBS}/{job['id']}", status=404, schema="error.ups")
        await stranger.call("DELETE", f"{JOBS}/{job['id']}", status=404, schema="error.ups")
    await stranger.call("GET", f"{DATASETS}/{dataset_id}", status=404, schema="error.problem")
    for batch_id in batch_ids(live) + batch_ids(finished):
        await stranger.call("GET", f"{BATCHES}/{batch_id}", status=404, schema="error.problem")

    # The stranger's requests changed nothing: the live job was neither polled nor cancelled.
    assert (await owner.get_job(live["id"]))["status"] == "PROCESSING"
    assert (await owner.get_job(finished["id"]))["status"] == "SUCCEEDED"


@pytest.mark.parametrize(("org", "sandbox"), STRANGERS)
async def test_strangers_see_nothing_in_lists(client: TestClient[Any, Any], org: str, sandbox: str) -> None:
    owner = Aep(client)
    stranger = Aep(client, org=org, sandbox=sandbox)
    dataset_id, live, finished = await owned_state(owner)

    listed = await stranger.call("GET", JOBS, status=200, schema="export-job.list.response")
    assert listed["records"] == []
    for status in ("NEW", "PROCESSING", "SUCCEEDED"):
        by_status = await stranger.call(
            "GET", f"{JOBS}?status={status}", status=200, schema="export-job.list.response"
        )
        assert by_status["records"] == []
    assert await stranger.call("GET", DATASETS, status=200, schema="dataset.map.response") == {}
    assert await stranger.call("GET", BATCHES, status=200, schema="batch.map.response") == {}
    by_dataset = await stranger.call(
        "GET", f"{BATCHES}?dataSet={dataset_id}", status=200, schema="batch.map.response"
    )
    assert by_dataset == {}

    # The owner sees all of it.
    owner_jobs = await owner.call("GET", JOBS, status=200, schema="export-job.list.response")
    assert {j["id"] for j in owner_jobs["records"]} == {live["id"], finished["id"]}
    owner_batches = await owner.call("GET", BATCHES, status=200, schema="batch.map.response")
    assert set(owner_batches) == set(batch_ids(live) + batch_ids(finished))


async def test_each_tenant_sees_only_its_own(client: TestClient[Any, Any]) -> None:
    tenants = [Aep(client, org=org, sandbox=sandbox) for org, sandbox in [(ORG, "prod"), *STRANGERS]]
    owned: dict[int, tuple[str, int]] = {}
    for index, tenant in enumerate(tenants):
        dataset_id = await tenant.create_dataset(name=f"tenant {index}")
        job = await tenant.create_job(dataset_id)
        owned[index] = (dataset_id, job["id"])
    for index, tenant in enumerate(tenants):
        dataset_id, job_id = owned[index]
        datasets = await tenant.call("GET", DATASETS, status=200, schema="dataset.map.response")
        assert list(datasets) == [dataset_id]
        assert datasets[dataset_id]["imsOrg"] == tenant.org
        assert datasets[dataset_id]["sandboxName"] == tenant.sandbox
        jobs = await tenant.call("GET", JOBS, status=200, schema="export-job.list.response")
        assert [j["id"] for j in jobs["records"]] == [job_id]
        assert jobs["records"][0]["imsOrgId"] == tenant.org


async def test_a_stranger_cannot_cancel(client: TestClient[Any, Any]) -> None:
    owner = Aep(client)
    stranger = Aep(client, org=OTHER_ORG)
    dataset_id = await owner.create_dataset()
    job = await owner.create_job(dataset_id, headers={"x-emulator-scenario": "stuck"})
    await owner.get_job(job["id"])
    await stranger.call("DELETE", f"{JOBS}/{job['id']}", status=404, schema="error.ups")
    assert (await owner.get_job(job["id"]))["status"] == "PROCESSING"
