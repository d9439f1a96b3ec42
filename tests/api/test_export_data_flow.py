"""The whole export path through plain HTTP: dataset -> export job -> poll -> batches -> files -> rows.

Also what a request asks for is what the files hold (projection, filters, segmentPerBatch, JSON Lines), and
the job's counters and the batch's recordCount equal what the files really contain.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import pyarrow.parquet as pq
from aiohttp.test_utils import TestClient

from tests.conftest import Aep, assert_matches

EXPORT = "/data/foundation/export"
BATCHES = "/data/foundation/catalog/batches"
SEGMENT = "7c1b3d5e-2f4a-4b6c-8d0e-1f2a3b4c5d6e"
OTHER_SEGMENT = "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"


# -- helpers (imported by test_data_access) ----------------------------------------------------------


async def add_scenario(
    client: TestClient[Any, Any],
    name: str,
    *,
    count: int = 120,
    empty: int = 0,
    events: tuple[int, int] = (0, 3),
    max_records: int = 10_000,
    **extra: Any,
) -> str:
    """A scenario that succeeds on the second poll and exports this population, in files this big."""
    document = {
        "name": name,
        "steps": [
            {"status": "NEW"},
            {"status": "PROCESSING", "after": {"polls": 1}},
            {"status": "SUCCEEDED", "after": {"polls": 1}},
        ],
        "profiles": {"count": count, "emptyProfiles": empty, "eventsPerProfile": list(events)},
        "files": {"maxRecordsPerFile": max_records},
        **extra,
    }
    response = await client.post("/_emulator/scenarios", json=document)
    body = await response.json()
    assert response.status == 201, body
    assert_matches("control.scenario-added.response", body)
    return name


async def succeeded_export(aep: Aep, dataset_id: str, scenario: str | None = None, **fields: Any) -> Any:
    """Create an export job and poll it until it has SUCCEEDED (two polls); returns the job."""
    headers = {"x-emulator-scenario": scenario} if scenario else {}
    job = await aep.create_job(dataset_id, headers=headers, **fields)
    for _ in range(2):
        job = await aep.get_job(job["id"])
    assert job["status"] == "SUCCEEDED", job
    return job


def batch_ids(job: Any) -> list[str]:
    destination = job["destination"]
    if destination["segmentPerBatch"]:
        return [b["batchId"] for b in destination["batches"]]
    return [destination["batchId"]]


async def batch_files(aep: Aep, batch_id: str, status: int = 200, **query: Any) -> Any:
    return await aep.call(
        "GET",
        f"{EXPORT}/batches/{batch_id}/files",
        params=query,
        status=status,
        schema="data-access.batch-files.response" if status == 200 else "error.problem",
    )


async def all_file_ids(aep: Aep, batch_id: str) -> list[str]:
    """Every dataSetFileId of the batch, following the pages."""
    ids: list[str] = []
    start = 0
    while True:
        page = await batch_files(aep, batch_id, start=start, limit=100)
        ids += [f["dataSetFileId"] for f in page["data"]]
        if "next" not in page.get("_links", {}):
            return ids
        start += 100


async def file_name(aep: Aep, file_id: str) -> str:
    listing = await aep.call(
        "GET", f"{EXPORT}/files/{file_id}", status=200, schema="data-access.file-listing.response"
    )
    return str(listing["data"][0]["name"])


async def download(aep: Aep, file_id: str) -> bytes:
    name = await file_name(aep, file_id)
    response = await aep.client.get(f"{EXPORT}/files/{file_id}", params={"path": name}, headers=aep.headers())
    assert response.status == 200, await response.text()
    return await response.read()


def parquet_rows(data: bytes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(data)).to_pylist()
    return rows


async def batch_rows(aep: Aep, batch_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for file_id in await all_file_ids(aep, batch_id):
        rows += parquet_rows(await download(aep, file_id))
    return rows


def namespaces_of(rows: list[dict[str, Any]]) -> dict[str, int]:
    counted: Counter[str] = Counter()
    for row in rows:
        counted.update(key for key, _ in row["identityMap"])
    return dict(counted)


def ecids(rows: list[dict[str, Any]]) -> set[str]:
    return {dict(r["identityMap"])["ECID"][0]["id"] for r in rows if "ECID" in dict(r["identityMap"])}


def memberships(row: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for namespace, segments in row.get("segmentMembership") or []:
        for segment_id, membership in segments:
            found[(namespace, segment_id)] = membership
    return found


# -- the flow ----------------------------------------------------------------------------------------


async def test_dataset_to_rows_through_plain_http(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "three-files", count=250, max_records=100)
    dataset_id = await aep.create_dataset()
    job = await succeeded_export(aep, dataset_id, "three-files")
    (batch_id,) = batch_ids(job)

    batches = await aep.call("GET", f"{BATCHES}/{batch_id}", status=200, schema="batch.map.response")
    batch = batches[batch_id]
    assert batch["status"] == "success"
    assert {"type": "dataSet", "id": dataset_id} in batch["relatedObjects"]

    listed = await batch_files(aep, batch_id)
    assert listed["_page"] == {"limit": 100, "count": 3}
    assert "_links" not in listed  # not paged: one page holds them all
    assert [f["records"] for f in listed["data"]] == ["100", "100", "50"]
    assert all(f["dataSetViewId"] == dataset_id and f["isValid"] for f in listed["data"])
    assert len({f["dataSetFileId"] for f in listed["data"]}) == 3
    first = listed["data"][0]
    assert first["_links"]["self"]["href"].endswith(f"{EXPORT}/files/{first['dataSetFileId']}")

    listing = await aep.call(
        "GET",
        f"{EXPORT}/files/{first['dataSetFileId']}",
        status=200,
        schema="data-access.file-listing.response",
    )
    (entry,) = listing["data"]
    assert entry["name"].endswith(".parquet")
    # The link leads back to this emulator: follow it as a client would.
    response = await client.session.get(entry["_links"]["self"]["href"], headers=aep.headers())
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/parquet"
    data = await response.read()
    assert int(entry["length"]) == len(data) == int(response.headers["Content-Length"])

    rows = await batch_rows(aep, batch_id)
    assert len(rows) == 250
    metrics = job["metrics"]
    assert metrics["totalExportedProfileCounter"] == len(rows) == batch["recordCount"]
    assert metrics["exportedProfileByNamespaceCounter"] == namespaces_of(rows)
    assert batch["metrics"]["recordsWritten"] == 250


async def test_fields_projects_exactly_the_named_dot_paths(client: TestClient[Any, Any], aep: Aep) -> None:
    # The Profile and Segmentation docs: `fields` "limits the data fields included in the export to only
    # those provided"; identityMap is not added when it is not asked for.
    await add_scenario(client, "small", count=40)
    dataset_id = await aep.create_dataset()
    job = await succeeded_export(
        aep, dataset_id, "small", fields="person.name.firstName, homeAddress.city,identities.id"
    )
    rows = await batch_rows(aep, batch_ids(job)[0])
    assert len(rows) == 40 == job["metrics"]["totalExportedProfileCounter"]
    for row in rows:
        assert set(row) == {"person", "homeAddress"}
        assert set(row["person"]) == {"name"} and set(row["person"]["name"]) == {"firstName"}
        assert set(row["homeAddress"]) == {"city"}
        assert row["person"]["name"]["firstName"] and row["homeAddress"]["city"]
    # No identityMap in the files: no namespace to count.
    assert job["metrics"]["exportedProfileByNamespaceCounter"] == {}


async def test_identity_map_is_exported_when_named(client: TestClient[Any, Any], aep: Aep) -> None:
    # The docs' event-only example asks for it explicitly: `"fields": "identityMap"`.
    await add_scenario(client, "small", count=40)
    dataset_id = await aep.create_dataset()
    job = await succeeded_export(aep, dataset_id, "small", fields="identityMap")
    rows = await batch_rows(aep, batch_ids(job)[0])
    assert [set(row) for row in rows] == [{"identityMap"}] * 40
    assert job["metrics"]["exportedProfileByNamespaceCounter"] == namespaces_of(rows)
    only_email = await succeeded_export(aep, dataset_id, "small", fields="identityMap.email,person.name")
    rows = await batch_rows(aep, batch_ids(only_email)[0])
    assert all(set(row) == {"identityMap", "person"} for row in rows)
    assert only_email["metrics"]["exportedProfileByNamespaceCounter"] == namespaces_of(rows)
    assert set(namespaces_of(rows)) == {"email"}


async def test_fields_naming_nothing_keep_rows_with_the_bookkeeping_column(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    await add_scenario(client, "small", count=40)
    dataset_id = await aep.create_dataset()
    job = await succeeded_export(aep, dataset_id, "small", fields="identities.id")
    rows = await batch_rows(aep, batch_ids(job)[0])
    assert [set(row) for row in rows] == [{"_repo"}] * 40
    assert job["metrics"]["totalExportedProfileCounter"] == 40


async def test_without_fields_every_profile_field_is_exported(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "small", count=40)
    dataset_id = await aep.create_dataset()
    rows = await batch_rows(aep, batch_ids(await succeeded_export(aep, dataset_id, "small"))[0])
    assert set(rows[0]) == {
        "identityMap",
        "person",
        "personalEmail",
        "mobilePhone",
        "homeAddress",
        "segmentMembership",
        "_repo",
    }
    with_email = [r for r in rows if r["personalEmail"] is not None]
    assert with_email and all(
        dict(r["identityMap"])["email"][0]["id"] == r["personalEmail"]["address"] for r in with_email
    )
    assert all(r["person"]["name"]["lastName"] and r["person"]["birthDate"] for r in rows)


async def test_segment_filter_exports_members_with_the_default_statuses(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    await add_scenario(client, "people", count=300)
    dataset_id = await aep.create_dataset()
    everyone = await batch_rows(aep, batch_ids(await succeeded_export(aep, dataset_id, "people"))[0])
    segment = {"segmentId": SEGMENT, "segmentNs": "ups"}
    default = await succeeded_export(aep, dataset_id, "people", filter={"segments": [segment]})
    members = await batch_rows(aep, batch_ids(default)[0])
    statuses = Counter(memberships(r)[("ups", SEGMENT)]["status"] for r in members)
    assert set(statuses) == {"realized", "existing"}
    assert 0 < len(members) < len(everyone)
    assert default["metrics"]["totalExportedProfileCounter"] == len(members)

    exited = await succeeded_export(
        aep, dataset_id, "people", filter={"segments": [{**segment, "status": ["exited"]}]}
    )
    leaving = await batch_rows(aep, batch_ids(exited)[0])
    assert leaving and {memberships(r)[("ups", SEGMENT)]["status"] for r in leaving} == {"exited"}
    # The same people are members in every job of the tenant.
    again = await batch_rows(
        aep, batch_ids(await succeeded_export(aep, dataset_id, "people", filter={"segments": [segment]}))[0]
    )
    assert again == members


async def test_segment_per_batch_writes_one_batch_per_segment(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "people", count=200)
    dataset_id = await aep.create_dataset()
    segments = [
        {"segmentId": SEGMENT, "segmentNs": "ups", "status": ["realized"]},
        {"segmentId": OTHER_SEGMENT, "segmentNs": "AAM", "status": ["existing", "exited"]},
    ]
    job = await succeeded_export(
        aep,
        dataset_id,
        "people",
        filter={"segments": segments},
        destination={"datasetId": dataset_id, "segmentPerBatch": True},
    )
    first, second = batch_ids(job)
    in_first = await batch_rows(aep, first)
    in_second = await batch_rows(aep, second)
    assert in_first and {memberships(r)[("ups", SEGMENT)]["status"] for r in in_first} == {"realized"}
    assert in_second and {memberships(r)[("AAM", OTHER_SEGMENT)]["status"] for r in in_second} <= {
        "existing",
        "exited",
    }
    metrics = job["metrics"]
    assert metrics["totalExportedProfileCounter"] == len(in_first) + len(in_second)
    assert metrics["exportedProfileByNamespaceCounter"] == dict(
        Counter(namespaces_of(in_first)) + Counter(namespaces_of(in_second))
    )
    batches = await aep.call(
        "GET", BATCHES, params={"dataSet": dataset_id}, status=200, schema="batch.map.response"
    )
    assert {b: batches[b]["recordCount"] for b in (first, second)} == {
        first: len(in_first),
        second: len(in_second),
    }


async def test_segment_qualification_time_keeps_memberships_qualified_in_the_window(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    await add_scenario(client, "people", count=300)
    dataset_id = await aep.create_dataset()
    segment = {"segmentId": SEGMENT, "status": ["realized", "existing", "exited"]}
    all_members = await batch_rows(
        aep, batch_ids(await succeeded_export(aep, dataset_id, "people", filter={"segments": [segment]}))[0]
    )
    window = {"startTime": "2023-04-01T00:00:00Z", "endTime": "2023-07-01T00:00:00+00:00"}
    job = await succeeded_export(
        aep, dataset_id, "people", filter={"segments": [segment], "segmentQualificationTime": window}
    )
    in_window = await batch_rows(aep, batch_ids(job)[0])
    assert 0 < len(in_window) < len(all_members)
    for row in in_window:
        qualified = memberships(row)[("ups", SEGMENT)]["lastQualificationTime"]
        assert "2023-04-01" <= qualified.isoformat() <= "2023-07-01"
    expected = [
        r
        for r in all_members
        if "2023-04-01"
        <= memberships(r)[("ups", SEGMENT)]["lastQualificationTime"].isoformat()
        <= "2023-07-01"
    ]
    assert in_window == expected


async def test_from_ingest_timestamp_keeps_profiles_updated_after_it(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    await add_scenario(client, "people", count=200)
    dataset_id = await aep.create_dataset()
    everyone = await batch_rows(aep, batch_ids(await succeeded_export(aep, dataset_id, "people"))[0])
    job = await succeeded_export(
        aep, dataset_id, "people", filter={"fromIngestTimestamp": "2023-10-01T00:00:00Z"}
    )
    recent = await batch_rows(aep, batch_ids(job)[0])
    assert recent == [
        r for r in everyone if r["_repo"]["modifyDate"].isoformat() > "2023-10-01T00:00:00+00:00"
    ]
    assert 0 < len(recent) < len(everyone)


async def test_empty_profiles_are_exported_only_when_asked(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "with-empty", count=100, empty=20, events=(0, 2))
    dataset_id = await aep.create_dataset()
    default = await succeeded_export(aep, dataset_id, "with-empty")
    assert default["metrics"]["totalExportedProfileCounter"] == 100
    assert all(r["person"] is not None for r in await batch_rows(aep, batch_ids(default)[0]))

    event_list = {"eventList": {}}
    job = await succeeded_export(
        aep, dataset_id, "with-empty", filter={"emptyProfiles": True}, additionalFields=event_list
    )
    rows = await batch_rows(aep, batch_ids(job)[0])
    assert len(rows) == job["metrics"]["totalExportedProfileCounter"] == 120
    empty = [r for r in rows if r["person"] is None]
    assert len(empty) == 20
    for row in empty:
        assert [key for key, _ in row["identityMap"]] == ["ECID"]
        assert row["eventList"] and row["segmentMembership"] is None and row["_repo"] is None


async def test_event_list_fields_and_ingest_window_shape_the_events(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    await add_scenario(client, "eventful", count=60, events=(2, 6))
    dataset_id = await aep.create_dataset()
    full = await succeeded_export(aep, dataset_id, "eventful", additionalFields={"eventList": {}})
    all_rows = await batch_rows(aep, batch_ids(full)[0])
    events = [e for r in all_rows for e in r["eventList"]]
    assert len(events) >= 120
    assert set(events[0]) == {"_id", "timestamp", "eventType", "_acp_system_metadata"}
    assert len({e["_id"] for e in events}) == len(events)

    low, high = "2023-03-01T00:00:00Z", "2023-09-01T00:00:00Z"
    low_ms, high_ms = 1_677_628_800_000, 1_693_526_400_000
    request = {
        "eventList": {
            "fields": "timestamp, eventType",
            "filter": {"fromIngestTimestamp": low, "toIngestTimestamp": high},
        }
    }
    shaped = await succeeded_export(aep, dataset_id, "eventful", additionalFields=request)
    rows = await batch_rows(aep, batch_ids(shaped)[0])
    assert len(rows) == 60  # the event filter shapes events, it does not drop profiles
    kept = [e for r in rows for e in r["eventList"]]
    assert kept and all(set(e) == {"_id", "timestamp", "eventType"} for e in kept)
    expected = [e["_id"] for e in events if low_ms < e["_acp_system_metadata"]["ingestTime"] < high_ms]
    assert [e["_id"] for e in kept] == expected


async def test_evaluation_info_segmentation_re_evaluates_memberships(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    await add_scenario(client, "people", count=300)
    dataset_id = await aep.create_dataset()
    segment = {"segmentId": SEGMENT, "status": ["realized"]}
    before = await batch_rows(
        aep, batch_ids(await succeeded_export(aep, dataset_id, "people", filter={"segments": [segment]}))[0]
    )
    job = await succeeded_export(
        aep, dataset_id, "people", filter={"segments": [segment]}, evaluationInfo={"segmentation": True}
    )
    after = await batch_rows(aep, batch_ids(job)[0])
    assert before and after
    # A fresh evaluation: who entered earlier now "exists"; those who enter now qualify at the evaluation.
    newly = {memberships(r)[("ups", SEGMENT)]["lastQualificationTime"] for r in after}
    assert len(newly) == 1
    assert not ecids(before) & ecids(after)


async def test_a_json_dataset_gets_json_lines_with_the_same_rows(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    await add_scenario(client, "small", count=50, max_records=20)
    parquet_dataset = await aep.create_dataset()
    json_dataset = await aep.create_dataset(fileDescription={"persisted": True, "format": "json"})
    as_parquet = await batch_rows(aep, batch_ids(await succeeded_export(aep, parquet_dataset, "small"))[0])
    job = await succeeded_export(aep, json_dataset, "small", additionalFields={"eventList": {}})
    lines: list[dict[str, Any]] = []
    for file_id in await all_file_ids(aep, batch_ids(job)[0]):
        name = await file_name(aep, file_id)
        assert name.endswith(".json")
        response = await client.get(f"{EXPORT}/files/{file_id}", params={"path": name}, headers=aep.headers())
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/x-ndjson"
        text = (await response.read()).decode()
        assert text.endswith("\n")
        lines += [json.loads(line) for line in text.splitlines()]
    assert len(lines) == job["metrics"]["totalExportedProfileCounter"] == 50
    assert [r["person"]["name"] for r in lines] == [r["person"]["name"] for r in as_parquet]
    first = lines[0]
    assert isinstance(first["identityMap"], dict) and first["identityMap"]
    assert first["_repo"]["modifyDate"].endswith("Z")
    assert len(first["person"]["birthDate"]) == 10
    assert all(v is not None for v in first.values())


async def test_unfinished_and_failed_exports_have_no_files_nor_counters(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    batch_id = batch_ids(job)[0]
    assert "totalExportedProfileCounter" not in job["metrics"]
    assert await batch_files(aep, batch_id) == {"data": [], "_page": {"limit": 100, "count": 0}}
    batch = (await aep.call("GET", f"{BATCHES}/{batch_id}", status=200, schema="batch.map.response"))[
        batch_id
    ]
    assert batch["status"] == "processing" and "recordCount" not in batch

    failed = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "failure"})
    for _ in range(2):
        failed = await aep.get_job(failed["id"])
    assert failed["status"] == "FAILED" and "totalExportedProfileCounter" not in failed["metrics"]
    assert (await batch_files(aep, batch_ids(failed)[0]))["data"] == []


async def test_an_empty_population_succeeds_with_zero_profiles_and_no_files(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    dataset_id = await aep.create_dataset()
    job = await succeeded_export(aep, dataset_id, "empty")
    assert job["metrics"]["totalExportedProfileCounter"] == 0
    assert job["metrics"]["exportedProfileByNamespaceCounter"] == {}
    assert (await batch_files(aep, batch_ids(job)[0]))["data"] == []


async def test_a_forced_success_exports_too(client: TestClient[Any, Any], aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "stuck"})
    response = await client.post(f"/_emulator/jobs/{job['id']}/force", json={"status": "SUCCEEDED"})
    assert response.status == 200
    assert_matches("control.job.response", await response.json())
    job = await aep.get_job(job["id"])
    rows = await batch_rows(aep, batch_ids(job)[0])
    assert len(rows) == job["metrics"]["totalExportedProfileCounter"] == 1000  # the default population


async def test_same_seed_same_bytes_in_any_fetch_order_and_after_a_restart(
    aiohttp_client: Any, options: Any
) -> None:
    from emulator.app import create_app
    from emulator.options import Options

    async def files_of(client: TestClient[Any, Any], order: slice) -> dict[int, bytes]:
        aep = Aep(client)
        await add_scenario(client, "four-files", count=70, max_records=20, events=(1, 3))
        dataset_id = await aep.create_dataset()
        job = await succeeded_export(
            aep, dataset_id, "four-files", additionalFields={"eventList": {}}, fields="person,identityMap"
        )
        ids = await all_file_ids(aep, batch_ids(job)[0])
        return {index: await download(aep, ids[index]) for index in list(range(len(ids)))[order]}

    first = await files_of(await aiohttp_client(create_app(options)), slice(None))
    # A second emulator (a restart) fetching the files last to first.
    second = await files_of(await aiohttp_client(create_app(options)), slice(None, None, -1))
    assert len(first) == 4 and first == second
    seeded = Options(clock="manual", start_time_ms=options.start_time_ms, seed=7)
    other = await files_of(await aiohttp_client(create_app(seeded)), slice(None))
    assert all(other[i] != first[i] for i in first)
