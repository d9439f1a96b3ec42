"""Example: testing code built on `aepp` (Adobe's Python client for AEP) against the emulator.

aepp needs no change: configure it as usual, then point its endpoint settings at the emulator before
creating any aepp API class (the `aepp_on_emulator` fixture below is the whole recipe). aepp keeps its
settings in module-level dicts, so the fixture puts them back afterwards.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aepp
import pyarrow.parquet as pq
import pytest
from aepp import catalog, dataaccess, segmentation

from emulator.testing import AepEmulator

# -- your code ------------------------------------------------------------------------------------


class ExportFailed(Exception):
    pass


class ExportTimedOut(Exception):
    pass


def export_profiles(
    dataset_id: str,
    *,
    sleep: Callable[[float], object] = time.sleep,
    poll_seconds: float = 30,
    timeout_seconds: float = 3600,
) -> dict[str, Any]:
    """Export every profile into `dataset_id` and wait; cancel the job and raise if it takes too long."""
    seg = segmentation.Segmentation()
    job = seg.createExport(
        {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
    )
    waited = 0.0
    while True:
        job = seg.getExport(job["id"])
        if job["status"] == "SUCCEEDED":
            return job
        if job["status"] in ("FAILED", "CANCELLED"):
            raise ExportFailed("; ".join(error["msg"] for error in job.get("errors", [])))
        if waited >= timeout_seconds:
            seg.deleteExport(job["id"])
            raise ExportTimedOut(f"export job {job['id']} still {job['status']} after {waited:.0f} s")
        sleep(poll_seconds)
        waited += poll_seconds


def exported_rows(job: dict[str, Any]) -> int:
    da = dataaccess.DataAccess()
    rows = 0
    for dataset_file in da.getBatchFiles(job["destination"]["batchId"]):
        listing = da.getFiles(dataset_file["dataSetFileId"])
        for entry in listing["data"]:
            rows += pq.read_table(da.getFiles(dataset_file["dataSetFileId"], path=entry["name"])).num_rows
    return rows


# -- its tests ------------------------------------------------------------------------------------


AEPP_SETTINGS = (aepp.config.config_object, aepp.config.header, aepp.config.endpoints)


@pytest.fixture
def aepp_on_emulator(
    aep_emulator: AepEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[AepEmulator]:
    saved = [copy.deepcopy(settings) for settings in AEPP_SETTINGS]
    monkeypatch.chdir(tmp_path)  # in case aepp writes a file
    aepp.configure(
        org_id="MYORG@AdobeOrg",
        client_id="my-client-id",
        secret="my-client-secret",
        scopes="openid,AdobeID,read_organizations",
        sandbox="prod",
    )
    # configure() sets Adobe's URLs: replace them before creating any aepp API class.
    aepp.config.endpoints["global"] = aep_emulator.url
    aepp.config.config_object["imsEndpoint"] = aep_emulator.ims_url
    aepp.config.config_object["oauthTokenEndpointV2"] = aep_emulator.ims_url + "/ims/token/v3"
    yield aep_emulator
    for settings, original in zip(AEPP_SETTINGS, saved, strict=True):
        settings.clear()  # in place: aepp's classes hold these very dicts
        settings.update(original)


def new_dataset() -> str:
    created = catalog.Catalog().createDataSet(
        name="profiles", schemaId="https://ns.adobe.com/xdm/context/profile__union"
    )
    return str(created[0].rsplit("/", 1)[1])


def test_export_succeeds_and_its_files_hold_every_profile(aepp_on_emulator: AepEmulator) -> None:
    job = export_profiles(new_dataset(), sleep=aepp_on_emulator.clock.advance)
    assert exported_rows(job) == job["metrics"]["totalExportedProfileCounter"] > 0


@pytest.mark.aep_scenario("failure")
def test_a_failed_export_raises(aepp_on_emulator: AepEmulator) -> None:
    with pytest.raises(ExportFailed, match="Error writing profiles"):
        export_profiles(new_dataset(), sleep=aepp_on_emulator.clock.advance)


def test_a_stuck_export_is_cancelled(aepp_on_emulator: AepEmulator) -> None:
    dataset_id = new_dataset()
    aepp_on_emulator.next_job_scenario("stuck")
    with pytest.raises(ExportTimedOut):
        export_profiles(dataset_id, sleep=aepp_on_emulator.clock.advance, timeout_seconds=300)
    assert [job["job"]["status"] for job in aepp_on_emulator.jobs()] == ["CANCELLED"]
