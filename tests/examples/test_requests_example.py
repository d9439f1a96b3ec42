"""Example: testing your own `requests`-based AEP export code against the emulator.

The first half is "your code": a small client that gets a token, starts a profile export, polls it
(sleeping between polls), cancels it when it takes too long, and downloads the exported files. The second
half is its test suite. The only test-specific choices are the URLs and the `sleep` function: tests pass
`aep_emulator.clock.advance`, so waiting moves the emulator's clock instead of the wall clock.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq
import pytest
import requests

from emulator.testing import AepEmulator

# -- your code ------------------------------------------------------------------------------------


class ExportFailed(Exception):
    pass


class ExportTimedOut(Exception):
    pass


@dataclass
class ProfileExporter:
    platform_url: str  # https://platform.adobe.io
    ims_url: str  # https://ims-na1.adobelogin.com
    client_id: str
    client_secret: str
    org: str
    sandbox: str = "prod"
    poll_seconds: float = 30
    sleep: Callable[[float], object] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)

    def authenticate(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": "openid,AdobeID,read_organizations",
        }
        response = requests.post(f"{self.ims_url}/ims/token/v3", data=form, timeout=30)
        response.raise_for_status()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {response.json()['access_token']}",
                "x-api-key": self.client_id,
                "x-gw-ims-org-id": self.org,
                "x-sandbox-name": self.sandbox,
            }
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, self.platform_url + path, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def create_dataset(self, name: str) -> str:
        body = {
            "name": name,
            "schemaRef": {
                "id": "https://ns.adobe.com/xdm/context/profile__union",
                "contentType": "application/vnd.adobe.xed+json;version=1",
            },
        }
        created = self.call("POST", "/data/foundation/catalog/dataSets", json=body)
        return str(created[0].rsplit("/", 1)[1])

    def export_profiles(self, dataset_id: str, fields: str, timeout_seconds: float = 3600) -> dict[str, Any]:
        """Start a profile export and wait for it; cancel it and raise if it takes too long."""
        request = {
            "fields": fields,
            "destination": {"datasetId": dataset_id},
            "schema": {"name": "_xdm.context.profile"},
        }
        job_id = self.call("POST", "/data/core/ups/export/jobs", json=request)["id"]
        waited = 0.0
        while True:
            job: dict[str, Any] = self.call("GET", f"/data/core/ups/export/jobs/{job_id}")
            if job["status"] == "SUCCEEDED":
                return job
            if job["status"] in ("FAILED", "CANCELLED"):
                raise ExportFailed("; ".join(error["msg"] for error in job.get("errors", [])))
            if waited >= timeout_seconds:
                self.call("DELETE", f"/data/core/ups/export/jobs/{job_id}")
                raise ExportTimedOut(f"export job {job_id} still {job['status']} after {waited:.0f} s")
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds

    def download_profiles(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """Every exported profile: the job's batch -> its files (Data Access) -> Parquet rows."""
        rows: list[dict[str, Any]] = []
        batch_id = job["destination"]["batchId"]
        for dataset_file in self.call("GET", f"/data/foundation/export/batches/{batch_id}/files")["data"]:
            file_id = dataset_file["dataSetFileId"]
            for entry in self.call("GET", f"/data/foundation/export/files/{file_id}")["data"]:
                content = self.session.get(
                    f"{self.platform_url}/data/foundation/export/files/{file_id}",
                    params={"path": entry["name"]},
                    timeout=30,
                )
                content.raise_for_status()
                rows.extend(pq.read_table(io.BytesIO(content.content)).to_pylist())
        return rows


# -- its tests ------------------------------------------------------------------------------------


@pytest.fixture
def exporter(aep_emulator: AepEmulator) -> ProfileExporter:
    exporter = ProfileExporter(
        platform_url=aep_emulator.url,
        ims_url=aep_emulator.ims_url,
        client_id="my-client-id",
        client_secret="my-client-secret",
        org="MYORG@AdobeOrg",
        sleep=aep_emulator.clock.advance,  # waiting moves the emulator clock: no test ever sleeps
    )
    exporter.authenticate()
    return exporter


def test_export_succeeds_and_every_profile_is_downloaded(exporter: ProfileExporter) -> None:
    dataset_id = exporter.create_dataset("nightly profile export")
    job = exporter.export_profiles(dataset_id, fields="identityMap,person.name")
    profiles = exporter.download_profiles(job)
    assert len(profiles) == job["metrics"]["totalExportedProfileCounter"] > 0
    assert all(profile["identityMap"] for profile in profiles)


@pytest.mark.aep_scenario("failure")
def test_a_failed_export_raises_with_adobes_messages(exporter: ProfileExporter) -> None:
    dataset_id = exporter.create_dataset("nightly profile export")
    with pytest.raises(ExportFailed, match="Error writing profiles to output path"):
        exporter.export_profiles(dataset_id, fields="identityMap")


def test_a_stuck_export_is_cancelled_after_the_timeout(
    exporter: ProfileExporter, aep_emulator: AepEmulator
) -> None:
    dataset_id = exporter.create_dataset("nightly profile export")
    aep_emulator.next_job_scenario("stuck")
    with pytest.raises(ExportTimedOut, match="still PROCESSING after 600 s"):
        exporter.export_profiles(dataset_id, fields="identityMap", timeout_seconds=600)
    (job,) = aep_emulator.jobs()
    assert job["job"]["status"] == "CANCELLED"
    assert [entry["method"] for entry in aep_emulator.requests][-1] == "DELETE"


@pytest.mark.aep_scenario("slow")
def test_a_sixteen_minute_export_takes_no_time(exporter: ProfileExporter, aep_emulator: AepEmulator) -> None:
    started = aep_emulator.clock.now()
    dataset_id = exporter.create_dataset("nightly profile export")
    job = exporter.export_profiles(dataset_id, fields="identityMap")
    assert job["updateTime"] - job["creationTime"] == 16 * 60 * 1000
    assert aep_emulator.clock.now() - started >= 16 * 60 * 1000
