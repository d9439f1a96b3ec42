"""aepp 0.6.0, unmodified, on the audience leg: Segmentation's definitions and jobs, Profile's merge
policies, then an export of the evaluated segment downloaded through Data Access, every row satisfying the
definition. Uses the `emulator` fixture of test_aepp.py (aepp pointed at the emulator, nothing printed)."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
from aepp import customerprofile, dataaccess, segmentation

from emulator.testing import AepEmulator
from tests.conftest import assert_matches
from tests.e2e.test_aepp import emulator, poll  # noqa: F401  (the fixture)


def segment_data(name: str, pql: str) -> dict[str, object]:
    """What aepp's createSegment requires: name, description, expression, schema, ttlInDays."""
    return {
        "name": name,
        "description": f"{name}, for the aepp test",
        "expression": {"type": "PQL", "format": "pql/text", "value": pql},
        "schema": {"name": "_xdm.context.profile"},
        "ttlInDays": 30,
    }


def test_segment_definitions(emulator: AepEmulator) -> None:  # noqa: F811
    seg = segmentation.Segmentation()
    created = seg.createSegment(segment_data("Germans", 'homeAddress.countryCode = "DE"'))
    assert_matches("segment-definition.response", created)
    assert seg.getSegment(created["id"]) == created
    updated = seg.updateSegment(
        created["id"], {**segment_data("Germans and Austrians", 'homeAddress.countryCode in ["DE", "AT"]')}
    )
    assert_matches("segment-definition.response", updated)
    assert updated["name"] == "Germans and Austrians"
    others = [
        seg.createSegment(segment_data(f"segment {n}", f"person.birthDate.getYear() = {1950 + n}"))
        for n in range(104)
    ]
    listed = seg.getSegments()  # 105 definitions: aepp reads page.totalPages and fetches the other pages
    assert sorted(s["id"] for s in listed) == sorted([created["id"], *(o["id"] for o in others)])
    for definition in listed:
        assert_matches("segment-definition.response", definition)
    several = seg.getMultipleSegments([created["id"], others[0]["id"]])
    assert set(several) == {created["id"], others[0]["id"]}
    assert seg.deleteSegment(others[0]["id"]) == 200
    assert seg.getSegment(others[0]["id"])["status"] == 404


def test_segment_jobs(emulator: AepEmulator) -> None:  # noqa: F811
    seg = segmentation.Segmentation()
    german = seg.createSegment(segment_data("Germans", 'homeAddress.countryCode = "DE"'))
    job = seg.createJob([german["id"]])
    assert_matches("segment-job.response", job)
    assert job["status"] == "NEW"
    statuses = [seg.getJob(job["id"])["status"] for _ in range(3)]
    assert statuses == ["QUEUED", "PROCESSING", "SUCCEEDED"]
    done = seg.getJob(job["id"])
    assert_matches("segment-job.response", done)
    assert done["metrics"]["segmentedProfileCounter"][german["id"]] > 0
    jobs = seg.getJobs()
    assert [j["id"] for j in jobs] == [job["id"]]
    emulator.use_scenario("segment-stuck")
    stuck = seg.createJob([german["id"]])
    assert seg.deleteJob(stuck["id"]) == 200
    assert seg.getJob(stuck["id"])["status"] == "CANCELLED"  # CANCELLING, then CANCELLED on the next poll
    assert {j["status"] for j in seg.getJobs(status="CANCELLED")} == {"CANCELLED"}


def test_merge_policies(emulator: AepEmulator) -> None:  # noqa: F811
    profile = customerprofile.Profile()
    (default,) = profile.getMergePolicies()
    assert default["default"] is True
    assert_matches("merge-policy.response", default)
    assert profile.getMergePolicy(default["id"]) == default
    created = profile.createMergePolicy(
        {
            "name": "Loyalty members ordered by ID",
            "imsOrgId": emulator.org,
            "schema": {"name": "_xdm.context.profile"},
            "default": False,
            "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "dataSetPrecedence", "order": ["5b76f86b85d0e00000be5c8b"]},
            "updateEpoch": 1234567890,
        }
    )
    assert_matches("merge-policy.response", created)
    for n in range(3):
        profile.createMergePolicy({**created, "name": f"more {n}"})
    everything = profile.getMergePolicies(limit=2)  # follows `_links.next.href` page after page
    assert len(everything) == 5 and len({p["id"] for p in everything}) == 5


def test_the_audience_to_file_flow(emulator: AepEmulator) -> None:  # noqa: F811
    from aepp import catalog

    seg, profile, da = segmentation.Segmentation(), customerprofile.Profile(), dataaccess.DataAccess()
    berlin = seg.createSegment(segment_data("Berlin or Paris", 'homeAddress.city in ["Berlin", "Paris"]'))
    job = seg.createJob([berlin["id"]])
    while job["status"] not in ("SUCCEEDED", "FAILED"):
        job = seg.getJob(job["id"])
    members = job["metrics"]["segmentedProfileCounter"][berlin["id"]]
    dataset = catalog.Catalog().createDataSet(
        name="Berlin or Paris", schemaId="https://ns.adobe.com/xdm/context/profile__union"
    )
    dataset_id = dataset[0].rsplit("/", 1)[1]
    export = profile.createExportJob(
        exportDefinition={
            "fields": "identityMap,homeAddress",
            "mergePolicy": {"id": berlin["mergePolicyId"], "version": 1},
            "filter": {"segments": [{"segmentId": berlin["id"]}]},
            "destination": {"datasetId": dataset_id, "segmentPerBatch": False},
            "schema": {"name": "_xdm.context.profile"},
        }
    )
    export = poll(profile.getExportJob, export["id"], {"SUCCEEDED", "FAILED"})
    assert export["status"] == "SUCCEEDED"
    cities = []
    for entry in da.getBatchFiles(export["destination"]["batchId"]):
        listing = da.getFiles(entry["dataSetFileId"])
        content = da.getFiles(entry["dataSetFileId"], path=listing["data"][0]["name"])
        cities += [
            row["homeAddress"]["city"] for row in pq.read_table(io.BytesIO(content.getvalue())).to_pylist()
        ]
    assert len(cities) == members == export["metrics"]["totalExportedProfileCounter"]
    assert set(cities) <= {"Berlin", "Paris"}
