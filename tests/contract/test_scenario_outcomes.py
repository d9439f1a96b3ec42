"""Every bundled scenario, followed to its end: each reply on the way is checked against the OpenAPI document.

Polls, listings, the job's batches in Catalog, Data Access files and bytes, and the control plane's view, for
jobs that succeed, fail, succeed with errors, export nothing, hit gateway faults, or are cancelled.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.scenarios import bundled
from tests.contract.support import BATCHES, EXPORT, JOBS, EmulatorTarget, Target

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
MAX_POLLS = 30
STEP_SECONDS = 60
# The status each bundled scenario ends in; `stuck` never ends on its own and is cancelled.
OUTCOMES = {
    "success": "SUCCEEDED",
    "failure": "FAILED",
    "stuck": "CANCELLED",
    "slow": "SUCCEEDED",
    "partial-errors": "SUCCEEDED",
    "empty": "SUCCEEDED",
    "flaky-gateway": "SUCCEEDED",
}


def test_every_bundled_scenario_has_an_expected_outcome() -> None:
    # Segment-job scenarios are followed in tests/api/test_segment_jobs.py.
    assert {scenario.name for scenario in bundled() if scenario.kind == "export"} == set(OUTCOMES)


async def follow(emu: EmulatorTarget, job: dict[str, Any]) -> tuple[dict[str, Any], set[int]]:
    """Poll, advancing the clock, until the job ends (at most MAX_POLLS); returns the HTTP statuses seen."""
    statuses: set[int] = set()
    for _ in range(MAX_POLLS):
        reply = await emu.request("GET", f"{JOBS}/{job['id']}")
        emu.contract.check("getExportJob", reply)
        statuses.add(reply.status)
        if reply.status == 200:
            job = reply.json()
            if job["status"] in TERMINAL:
                break
        await emu.control("POST", "/clock/advance", {"seconds": STEP_SECONDS})
    return job, statuses


async def check_outputs(emu: EmulatorTarget, job: dict[str, Any]) -> None:
    """The job as listed, its batches, their files and bytes, and the control plane's view."""
    listed = await emu.call("listExportJobs", 200, params={"status": job["status"]})
    assert job["id"] in [record["id"] for record in listed.json()["records"]]
    batch_ids = [b["batchId"] for b in job["destination"].get("batches", [])] or [
        job["destination"]["batchId"]
    ]
    for batch_id in batch_ids:
        batch = await emu.request("GET", f"{BATCHES}/{batch_id}")
        emu.contract.check("getBatch", batch)
        files = await emu.call("listBatchFiles", 200, f"{EXPORT}/batches/{batch_id}/files")
        if job["status"] != "SUCCEEDED":
            assert files.json()["data"] == []
        for entry in files.json()["data"][:2]:
            listing = await emu.call("getFile", 200, f"{EXPORT}/files/{entry['dataSetFileId']}")
            name = listing.json()["data"][0]["name"]
            path = f"{EXPORT}/files/{entry['dataSetFileId']}"
            whole = await emu.call("getFile", 200, path, params={"path": name})
            assert len(whole.body) == int(listing.json()["data"][0]["length"])
            await emu.call("getFile", 206, path, params={"path": name}, headers={"Range": "bytes=-10"})
            await emu.call("headFile", 200, path, params={"path": name})
    await emu.call("listAllJobs", 200, "/_emulator/jobs", params={"all": "true"})


@pytest.mark.parametrize("name", sorted(OUTCOMES))
async def test_scenario_outcome(target: Target, name: str) -> None:
    emu = target
    assert isinstance(emu, EmulatorTarget)
    job = await emu.create_job(headers={"x-emulator-scenario": name})
    assert job["status"] in ("NEW", "PROCESSING")
    job, statuses = await follow(emu, job)
    if job["status"] not in TERMINAL:
        cancelled = await emu.call("deleteExportJob", 200, f"{JOBS}/{job['id']}")
        assert cancelled.json()["message"] == "Export job has been marked for cancelling"
        job, _ = await follow(emu, job)
    assert job["status"] == OUTCOMES[name]
    if name == "flaky-gateway":
        assert statuses == {200, 429, 503}
    if name == "partial-errors":
        assert job["errors"]
    if name == "empty":
        assert job["metrics"]["totalExportedProfileCounter"] == 0
    await check_outputs(emu, job)


async def test_segment_per_batch_outcome(target: Target) -> None:
    emu = target
    assert isinstance(emu, EmulatorTarget)
    segments = [{"segmentId": "seg-a"}, {"segmentId": "seg-b", "status": ["realized"]}]
    dataset_id = await emu.create_dataset(fileDescription={"format": "json"})
    body = {
        "destination": {"datasetId": dataset_id, "segmentPerBatch": True},
        "schema": {"name": "_xdm.context.profile"},
        "filter": {"segments": segments},
    }
    job = (await emu.call("createExportJob", 200, json_body=body)).json()
    job, _ = await follow(emu, job)
    assert job["status"] == "SUCCEEDED"
    assert len(job["destination"]["batches"]) == 2
    await check_outputs(emu, job)


async def test_cancel_may_end_in_failed(target: Target) -> None:
    """A scenario's `on_cancel` may report a cancelled job as FAILED, with errors."""
    emu = target
    assert isinstance(emu, EmulatorTarget)
    scenario = {
        "name": "cancel-fails",
        "steps": [{"status": "PROCESSING"}],
        "on_cancel": {"status": "FAILED", "errors": [{"code": "cancelled", "msg": "Cancelled by user"}]},
    }
    added = await emu.call("addScenario", 201, "/_emulator/scenarios", json_body=scenario)
    assert added.json()["name"] == "cancel-fails"
    job = await emu.create_job(headers={"x-emulator-scenario": "cancel-fails"})
    await emu.call("deleteExportJob", 200, f"{JOBS}/{job['id']}")
    job, _ = await follow(emu, job)
    assert job["status"] == "FAILED" and job["errors"]
    await check_outputs(emu, job)
