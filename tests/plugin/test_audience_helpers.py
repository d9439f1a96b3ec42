"""The fixture's audience helpers: define a segment, find the default merge policy, see how a definition's
members are decided, list jobs by kind, drive segment jobs with scenarios and force."""

from __future__ import annotations

from typing import Any

import requests

from emulator.testing import AepEmulator

SEGMENT_JOBS = "/data/core/ups/segment/jobs"


def test_define_a_segment_and_evaluate_it(aep_emulator: AepEmulator) -> None:
    berliners = aep_emulator.define_segment("Berliners", 'homeAddress.city = "Berlin"')
    outside = aep_emulator.define_segment(
        "US workers", 'workAddress.country = "US"', description="doc example"
    )
    assert berliners["mergePolicyId"] == aep_emulator.default_merge_policy_id()
    decided = {d["id"]: d["membership"] for d in aep_emulator.segments()}
    assert decided == {berliners["id"]: "pql", outside["id"]: "hash"}
    assert aep_emulator.segments(org="SOMEONE-ELSE@AdobeOrg") == []

    aep_emulator.use_scenario("segment-stuck")  # the default of segment jobs; export jobs keep theirs
    headers = aep_emulator.headers()
    job: Any = requests.post(
        aep_emulator.url + SEGMENT_JOBS, json=[{"segmentId": berliners["id"]}], headers=headers, timeout=10
    ).json()
    assert (
        requests.get(f"{aep_emulator.url}{SEGMENT_JOBS}/{job['id']}", headers=headers, timeout=10).json()[
            "status"
        ]
        == "QUEUED"
    )
    (listed,) = aep_emulator.jobs(kind="segment")
    assert listed["scenario"] == "segment-stuck" and aep_emulator.jobs(kind="export") == []
    forced = aep_emulator.force_job(job["id"], "SUCCEEDED")
    assert forced["job"]["metrics"]["segmentedProfileCounter"][berliners["id"]] >= 0


def test_the_default_merge_policy_is_per_tenant(aep_emulator: AepEmulator) -> None:
    mine = aep_emulator.default_merge_policy_id()
    assert mine == aep_emulator.default_merge_policy_id()
    assert mine != aep_emulator.default_merge_policy_id(org="OTHER@AdobeOrg")
    assert mine != aep_emulator.default_merge_policy_id(sandbox="dev")
