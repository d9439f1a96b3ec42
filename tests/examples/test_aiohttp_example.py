"""Example: testing your own asyncio (`aiohttp` client) AEP export code against the emulator.

The emulator of the `aep_emulator` fixture runs in a background thread with its own event loop, so async
code talks to it over real HTTP like to AEP. As in the `requests` example, tests hand the code a `sleep`
that advances the emulator clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pyarrow.parquet as pq
import pytest

from emulator.testing import AepEmulator

# -- your code ------------------------------------------------------------------------------------


class ExportFailed(Exception):
    pass


class ExportTimedOut(Exception):
    pass


@dataclass
class AsyncProfileExporter:
    session: aiohttp.ClientSession  # its base URL is the platform URL
    ims_url: str
    client_id: str
    client_secret: str
    org: str
    sandbox: str = "prod"
    poll_seconds: float = 30
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep

    async def authenticate(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": "openid,AdobeID,read_organizations",
        }
        async with self.session.post(f"{self.ims_url}/ims/token/v3", data=form) as response:
            response.raise_for_status()
            token = (await response.json())["access_token"]
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "x-api-key": self.client_id,
                "x-gw-ims-org-id": self.org,
                "x-sandbox-name": self.sandbox,
            }
        )

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(method, path, **kwargs) as response:
            body = await response.json()
            response.raise_for_status()
            return body

    async def export_segment(
        self, dataset_id: str, segment_id: str, timeout_seconds: float = 3600
    ) -> dict[str, Any]:
        """Export a segment's members and wait; cancel the job and raise if it takes too long."""
        request = {
            "filter": {"segments": [{"segmentId": segment_id}]},
            "destination": {"datasetId": dataset_id},
            "schema": {"name": "_xdm.context.profile"},
        }
        job_id = (await self.call("POST", "/data/core/ups/export/jobs", json=request))["id"]
        waited = 0.0
        while True:
            job: dict[str, Any] = await self.call("GET", f"/data/core/ups/export/jobs/{job_id}")
            if job["status"] == "SUCCEEDED":
                return job
            if job["status"] in ("FAILED", "CANCELLED"):
                raise ExportFailed("; ".join(error["msg"] for error in job.get("errors", [])))
            if waited >= timeout_seconds:
                await self.call("DELETE", f"/data/core/ups/export/jobs/{job_id}")
                raise ExportTimedOut(f"export job {job_id} still {job['status']} after {waited:.0f} s")
            await self.sleep(self.poll_seconds)
            waited += self.poll_seconds

    async def member_count(self, job: dict[str, Any]) -> int:
        """Rows in the job's exported files, read back through Data Access."""
        rows = 0
        batch = await self.call(
            "GET", f"/data/foundation/export/batches/{job['destination']['batchId']}/files"
        )
        for dataset_file in batch["data"]:
            path = f"/data/foundation/export/files/{dataset_file['dataSetFileId']}"
            for entry in (await self.call("GET", path))["data"]:
                async with self.session.get(path, params={"path": entry["name"]}) as response:
                    response.raise_for_status()
                    rows += pq.read_table(io.BytesIO(await response.read())).num_rows
        return rows


# -- its tests ------------------------------------------------------------------------------------

SEGMENT = "8f4c3a2e-6a8b-4b1c-9d0e-1f2a3b4c5d6e"


@pytest.fixture
async def exporter(aep_emulator: AepEmulator) -> AsyncIterator[AsyncProfileExporter]:
    async def advance(seconds: float) -> None:
        aep_emulator.clock.advance(seconds)  # instead of sleeping

    async with aiohttp.ClientSession(aep_emulator.url) as session:
        exporter = AsyncProfileExporter(
            session,
            ims_url=aep_emulator.ims_url,
            client_id="my-client-id",
            client_secret="my-client-secret",
            org="MYORG@AdobeOrg",
            sleep=advance,
        )
        await exporter.authenticate()
        yield exporter


async def new_dataset(exporter: AsyncProfileExporter) -> str:
    created = await exporter.call(
        "POST", "/data/foundation/catalog/dataSets", json={"name": "segment export"}
    )
    return str(created[0].rsplit("/", 1)[1])


async def test_segment_export_succeeds_with_its_members(exporter: AsyncProfileExporter) -> None:
    job = await exporter.export_segment(await new_dataset(exporter), SEGMENT)
    assert await exporter.member_count(job) == job["metrics"]["totalExportedProfileCounter"] > 0


@pytest.mark.aep_scenario("failure")
async def test_a_failed_export_raises(exporter: AsyncProfileExporter) -> None:
    with pytest.raises(ExportFailed, match="Job aborted"):
        await exporter.export_segment(await new_dataset(exporter), SEGMENT)


async def test_a_stuck_export_is_cancelled(exporter: AsyncProfileExporter, aep_emulator: AepEmulator) -> None:
    dataset_id = await new_dataset(exporter)
    aep_emulator.next_job_scenario("stuck")
    with pytest.raises(ExportTimedOut):
        await exporter.export_segment(dataset_id, SEGMENT, timeout_seconds=300)
    (job,) = aep_emulator.jobs()
    assert job["job"]["status"] == "CANCELLED"
    # Cancelling a job that is already cancelled deletes it, as AEP does with finished jobs.
    deleted = await exporter.call("DELETE", f"/data/core/ups/export/jobs/{job['job']['id']}")
    assert deleted == {"status": True, "message": "Export job has been deleted"}
    assert aep_emulator.jobs() == []
