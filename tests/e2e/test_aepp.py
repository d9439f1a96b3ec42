"""aepp 0.6.0 (Adobe's Python client, unmodified) runs the whole export flow against the emulator.

Only aepp's endpoint settings change (AEPP-CLIENT.md §1). aepp keeps its settings in module-level dicts, so
the fixture restores them afterwards; it runs in a temporary working directory in case aepp writes files,
and every test checks that aepp printed nothing (aepp prints instead of raising when it is unhappy).
aepp returns response bodies (sometimes a part of one) as dicts: each is checked against its schema.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aepp
import pyarrow.parquet as pq
import pytest
import requests
from aepp import catalog, customerprofile, dataaccess, segmentation

from emulator.options import Options
from emulator.runner import EmulatorServer
from emulator.testing import AepEmulator
from tests.conftest import ORG, PROFILE_UNION, assert_matches

SCOPES = "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session"
JOBS = "/data/core/ups/export/jobs"
CLIENT, SECRET = "aepp-strict-client", "aepp-strict-secret"
SEGMENT_A = "4ef3c2d8-0c42-4b0a-9b3e-6a8b4c1d2e3f"
SEGMENT_B = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"
_AEPP_SETTINGS = (aepp.config.config_object, aepp.config.header, aepp.config.endpoints)


@contextmanager
def aepp_pointed_at(emulator: AepEmulator) -> Iterator[None]:
    """aepp configured for the emulator, exactly as a user would (see README "Testing your integration");
    aepp's settings are restored afterwards."""
    saved = [copy.deepcopy(settings) for settings in _AEPP_SETTINGS]
    aepp.configure(
        org_id=emulator.org,
        client_id=emulator.client_id,
        secret=emulator.client_secret,
        scopes=SCOPES,
        sandbox=emulator.sandbox,
        environment="prod",
    )
    # configure() hard-codes Adobe's URLs: overwrite them before creating any aepp API class.
    aepp.config.endpoints["global"] = emulator.url
    aepp.config.endpoints["streaming"]["inlet"] = emulator.url + "/data/core/edge"
    aepp.config.config_object["imsEndpoint"] = emulator.ims_url
    aepp.config.config_object["oauthTokenEndpointV1"] = emulator.ims_url + "/ims/token/v1"
    aepp.config.config_object["oauthTokenEndpointV2"] = emulator.ims_url + "/ims/token/v3"
    try:
        yield
    finally:
        # The classes captured these very dicts as default arguments: restore them in place.
        for settings, original in zip(_AEPP_SETTINGS, saved, strict=True):
            settings.clear()
            settings.update(original)


@pytest.fixture
def emulator(
    aep_emulator: AepEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[AepEmulator]:
    monkeypatch.chdir(tmp_path)
    with aepp_pointed_at(aep_emulator):
        yield aep_emulator
    assert capsys.readouterr().out == "", "aepp printed something: it met a response it did not expect"


def create_dataset(cat: Any, name: str = "aepp export target") -> str:
    created = cat.createDataSet(name=name, schemaId=PROFILE_UNION)
    assert_matches("dataset.create.response", created)
    return str(created[0].rsplit("/", 1)[1])


def poll(get: Any, job_id: int, until: set[str], limit: int = 10) -> dict[str, Any]:
    """What a user's poll loop does (without sleeping: the scenarios move on polls)."""
    for _ in range(limit):
        job: dict[str, Any] = get(job_id)
        assert_matches("export-job.response", job)
        if job["status"] in until:
            return job
    raise AssertionError(f"job {job_id} never reached {until}")


def download_batch(da: Any, batch_id: str) -> tuple[int, list[str]]:
    """Every file of a batch through aepp's Data Access module: (rows read, file names)."""
    files = da.getBatchFiles(batch_id)
    # aepp returns only `data`; wrapped back into a page so the schema checks every entry.
    assert_matches(
        "data-access.batch-files.response", {"data": files, "_page": {"limit": 100, "count": len(files)}}
    )
    rows, names = 0, []
    for entry in files:
        listing = da.getFiles(entry["dataSetFileId"])
        assert_matches("data-access.file-listing.response", listing)
        name, length = listing["data"][0]["name"], int(listing["data"][0]["length"])
        content = da.getFiles(entry["dataSetFileId"], path=name)
        assert isinstance(content, io.BytesIO), "aepp decodes .parquet downloads into BytesIO"
        assert len(content.getvalue()) == length
        rows += pq.read_table(content).num_rows
        names.append(name)
    return rows, names


def test_ims_tokens_and_catalog_datasets(emulator: AepEmulator) -> None:
    cat = catalog.Catalog()
    dataset_id = create_dataset(cat)
    one = cat.getDataSet(dataset_id)
    assert_matches("dataset.map.response", one)
    assert one[dataset_id]["schemaRef"]["id"] == PROFILE_UNION
    other_id = create_dataset(cat, "second")
    listed = cat.getDataSets()
    # aepp copies each key into its entry as `id`; the rest is the response.
    assert_matches(
        "dataset.map.response", {k: {f: v for f, v in d.items() if f != "id"} for k, d in listed.items()}
    )
    assert set(listed) == {dataset_id, other_id}
    assert cat.data.ids == {"aepp export target": dataset_id, "second": other_id}
    sent = emulator.journal(path="/ims/token/v3")
    assert sent and all(entry["status"] == 200 for entry in sent)
    assert "grant_type=client_credentials" in sent[0]["body"]
    creates = emulator.journal(method="POST", path="/data/foundation/catalog/dataSets")
    assert [entry["query"] for entry in creates] == [{"requestDataSource": "False"}] * 2


def test_profile_export_job_to_downloaded_files(emulator: AepEmulator) -> None:
    cat, profile, da = catalog.Catalog(), customerprofile.Profile(), dataaccess.DataAccess()
    dataset_id = create_dataset(cat)
    # The sandbox's default merge policy, as a user finds it.
    default_policy = next(p["id"] for p in profile.getMergePolicies() if p["default"])
    job = profile.createExportJob(
        fields=["identityMap", "person.name", "personalEmail.address"],
        mergePolicyId=default_policy,
        datasetId=dataset_id,
    )
    assert_matches("export-job.response", job)
    assert job["status"] == "NEW"
    done = poll(profile.getExportJob, job["id"], {"SUCCEEDED", "FAILED"})
    assert done["status"] == "SUCCEEDED"
    listed = profile.getExportJobs()
    assert_matches("export-job.list.response", listed)
    assert [record["id"] for record in listed["records"]] == [job["id"]]
    trailing = [e for e in emulator.journal(method="GET") if e["path"] == f"{JOBS}/"]
    assert [(e["query"], e["status"]) for e in trailing] == [({"limit": "100"}, 200)]

    batch_id = done["destination"]["batchId"]
    batches = cat.getBatches(dataSet=dataset_id)
    assert_matches("batch.map.response", batches)
    assert list(batches) == [batch_id]
    batch = cat.getBatch(batch_id)
    assert_matches("batch.map.response", batch)
    assert batch[batch_id]["status"] == "success"
    assert batch[batch_id]["relatedObjects"] == [{"type": "dataSet", "id": dataset_id}]

    rows, names = download_batch(da, batch_id)
    assert names and all(name.endswith(".parquet") for name in names)
    assert rows == done["metrics"]["totalExportedProfileCounter"] > 0


def test_segment_export_one_batch_per_segment_and_cancel(emulator: AepEmulator) -> None:
    cat, seg, da = catalog.Catalog(), segmentation.Segmentation(), dataaccess.DataAccess()
    dataset_id = create_dataset(cat)
    request = {
        "fields": "identityMap,segmentMembership",
        "filter": {"segments": [{"segmentId": SEGMENT_A}, {"segmentId": SEGMENT_B, "status": ["realized"]}]},
        "destination": {"datasetId": dataset_id, "segmentPerBatch": True},
        "schema": {"name": "_xdm.context.profile"},
    }
    job = seg.createExport(request)
    assert_matches("export-job.response", job)
    done = poll(seg.getExport, job["id"], {"SUCCEEDED", "FAILED"})
    assert done["status"] == "SUCCEEDED"
    batch_ids = [batch["batchId"] for batch in done["destination"]["batches"]]
    assert [batch["segmentId"] for batch in done["destination"]["batches"]] == [SEGMENT_A, SEGMENT_B]
    rows = sum(download_batch(da, batch_id)[0] for batch_id in batch_ids)
    assert rows == done["metrics"]["totalExportedProfileCounter"]

    emulator.next_job_scenario("stuck")
    stuck = seg.createExport(request)
    assert poll(seg.getExport, stuck["id"], {"PROCESSING"})["status"] == "PROCESSING"
    assert seg.deleteExport(stuck["id"]) == 200  # aepp returns the status code of a 2xx DELETE
    assert poll(seg.getExport, stuck["id"], {"CANCELLED"})["status"] == "CANCELLED"
    # Deleting a finished job removes it; aepp hands back the 404 body.
    assert seg.deleteExport(stuck["id"]) == 200
    gone = seg.getExport(stuck["id"])
    assert_matches("error.ups", gone)
    assert gone["status"] == 404
    assert {job["id"] for job in seg.getExportJobs()} == {job["id"]}


def test_failed_export_leaves_a_failed_batch_without_files(emulator: AepEmulator) -> None:
    emulator.use_scenario("failure")
    cat, profile, da = catalog.Catalog(), customerprofile.Profile(), dataaccess.DataAccess()
    dataset_id = create_dataset(cat)
    job = profile.createExportJob(
        exportDefinition={
            "destination": {"datasetId": dataset_id},
            "schema": {"name": "_xdm.context.profile"},
        }
    )
    done = poll(profile.getExportJob, job["id"], {"SUCCEEDED", "FAILED"})
    assert done["status"] == "FAILED"
    assert [error["code"] for error in done["errors"]] == ["0090000009", "unknown"]
    batch = cat.getBatch(done["destination"]["batchId"])
    assert_matches("batch.map.response", batch)
    assert batch[done["destination"]["batchId"]]["status"] == "failed"
    assert da.getBatchFiles(done["destination"]["batchId"]) == []
    assert profile.deleteExportJob(job["id"]) == 200
    assert profile.getExportJobs()["records"] == []


def test_segmentation_lists_every_job_in_pages_of_1000(emulator: AepEmulator) -> None:
    cat, seg = catalog.Catalog(), segmentation.Segmentation()
    dataset_id = create_dataset(cat)
    body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
    created = []
    with requests.Session() as session:
        session.headers.update(emulator.headers())
        for _ in range(1001):
            response = session.post(emulator.url + JOBS, json=body, timeout=30)
            assert response.status_code == 200
            created.append(response.json()["id"])
    assert_matches("export-job.response", response.json())
    listed = seg.getExportJobs()
    for record in listed[::250]:
        assert_matches("export-job.response", record)
    ids = [record["id"] for record in listed]
    assert ids == sorted(created, reverse=True)  # newest first, no duplicates, no gaps
    pages = emulator.journal(method="GET", path=JOBS)
    assert [page["query"].get("limit") for page in pages] == ["1000", "1000"]
    assert "offset" not in pages[0]["query"] and pages[1]["query"]["offset"].endswith(f"_{ids[999]}")


def test_aepp_under_strict_auth_with_a_credentials_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials = tmp_path / "credentials.yaml"
    credentials.write_text(f"clients:\n  {CLIENT}: {{secret: {SECRET}, orgs: [{ORG}]}}\n")
    server = EmulatorServer(Options(port=0, clock="manual", auth="strict", credentials_file=credentials))
    server.start()
    monkeypatch.chdir(tmp_path)
    strict = AepEmulator(server.url)
    strict.org, strict.client_id, strict.client_secret = ORG, CLIENT, SECRET
    try:
        with aepp_pointed_at(strict):
            cat, profile = catalog.Catalog(), customerprofile.Profile()
            dataset_id = create_dataset(cat)
            job = profile.createExportJob(
                exportDefinition={
                    "destination": {"datasetId": dataset_id},
                    "schema": {"name": "_xdm.context.profile"},
                }
            )
            assert poll(profile.getExportJob, job["id"], {"SUCCEEDED"})["status"] == "SUCCEEDED"
            statuses = {(e["path"], e["status"]) for e in strict.requests}
            assert ("/ims/token/v3", 200) in statuses
            assert all(status < 400 for _, status in statuses)
        assert capsys.readouterr().out == ""
    finally:
        strict.close()
        server.stop()


def test_catalog_lists_and_filters_datasets_and_batches(emulator: AepEmulator) -> None:
    """aepp's getDataSets and getBatches with the filter arguments their docstrings list, unmodified: each
    reaches the emulator as Adobe's query parameters and gets the objects the filter selects."""
    cat, profile = catalog.Catalog(), customerprofile.Profile()
    first = create_dataset(cat, "alpha export")
    emulator.clock.advance(1)
    second = create_dataset(cat, "beta export")
    created = cat.getDataSet(first)[first]["created"]

    def dataset_ids(**filters: Any) -> set[str]:
        listed = cat.getDataSets(**filters)
        for entry in listed.values():
            assert_matches(
                "dataset.map.response", {entry["id"]: {k: v for k, v in entry.items() if k != "id"}}
            )
        return set(listed)

    assert dataset_ids() == {first, second}
    assert dataset_ids(name="alpha export") == {first}
    assert dataset_ids(name="!alpha export") == {second}
    assert dataset_ids(property="name~^beta") == {second}  # the docstring's example form, name~^test
    assert dataset_ids(created=created) == {first}
    assert dataset_ids(updated=created) == {first}
    assert dataset_ids(version="1.0.0", state="DRAFT", namespace="ACP") == {first, second}
    # (aepp's getDataSets pages on from `start=1+limit`, skipping an object: its own arithmetic, not tested.)

    jobs = []
    for dataset_id in (first, second, second):
        emulator.clock.advance(1)
        job = profile.createExportJob(
            exportDefinition={
                "destination": {"datasetId": dataset_id},
                "schema": {"name": "_xdm.context.profile"},
            }
        )
        jobs.append(job)
    assert poll(profile.getExportJob, jobs[0]["id"], {"SUCCEEDED"})["status"] == "SUCCEEDED"
    batch_ids = [job["destination"]["batchId"] for job in jobs]

    def batch_ids_of(**filters: Any) -> list[str]:
        listed = cat.getBatches(**filters)
        projected = "properties" in filters
        assert_matches("batch.map.projected.response" if projected else "batch.map.response", listed)
        return list(listed)

    assert batch_ids_of() == batch_ids
    assert batch_ids_of(dataSet=second) == batch_ids[1:]
    assert batch_ids_of(status="success") == batch_ids[:1]
    assert batch_ids_of(orderBy="desc:created") == batch_ids[::-1]
    assert batch_ids_of(orderBy="asc:status,desc:created") == [batch_ids[2], batch_ids[1], batch_ids[0]]
    assert batch_ids_of(createdAfter=jobs[0]["creationTime"]) == batch_ids[1:]
    assert batch_ids_of(createdBefore=jobs[1]["creationTime"]) == batch_ids[:1]
    assert batch_ids_of(created=jobs[1]["creationTime"]) == batch_ids[1:2]
    assert batch_ids_of(updated=jobs[1]["updateTime"]) == batch_ids[1:2]
    assert batch_ids_of(createdUser=f"{emulator.client_id}@AdobeID", version="1.0.0") == batch_ids
    assert batch_ids_of(properties="status", limit=2) == batch_ids[:2]
    assert batch_ids_of(start=1, limit=1) == batch_ids[1:2]
    assert batch_ids_of(n_results=3, limit=1) == batch_ids  # aepp's own paging with `start`
    size = cat.getBatches(properties="size", status="success")[batch_ids[0]]["size"]
    assert batch_ids_of(size=size) == batch_ids[:1]
    assert set(cat.getBatch(batch_ids[0])) == {batch_ids[0]}
