"""/data/core/ups/segment/jobs: create, poll through the segment scenarios, metrics that equal the real
membership, cancel (CANCELLING, then CANCELLED), delete, list (filters, paging, property), bulk-get, the
429 processing limit, scenarios chosen by header/queue/match, faults, force, tenancy, the state file."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.options import Options
from tests.conftest import DEFAULT_MERGE_POLICY, ORG, OTHER_ORG, START_MS, Aep, ClientFactory, assert_matches

DEFINITIONS = "/data/core/ups/segment/definitions"
SEGMENT_JOBS = "/data/core/ups/segment/jobs"


async def define(aep: Aep, value: str = 'homeAddress.countryCode = "DE"', name: str | None = None) -> str:
    body = {
        "name": name or value,
        "expression": {"type": "PQL", "format": "pql/text", "value": value},
        "schema": {"name": "_xdm.context.profile"},
    }
    created = await aep.call("POST", DEFINITIONS, json=body, status=200, schema="segment-definition.response")
    return str(created["id"])


async def start(aep: Aep, *segment_ids: str, headers: dict[str, str] | None = None) -> Any:
    body = [{"segmentId": s} for s in segment_ids]
    return await aep.call(
        "POST", SEGMENT_JOBS, json=body, status=200, schema="segment-job.response", headers=headers or {}
    )


async def poll(aep: Aep, job_id: str) -> Any:
    return await aep.call("GET", f"{SEGMENT_JOBS}/{job_id}", status=200, schema="segment-job.response")


def message(error: Any) -> str:
    return str(next(iter(error["errors"].values()))[0]["message"])


async def test_success_goes_new_queued_processing_succeeded_and_counts_the_members(aep: Aep) -> None:
    segment = await define(aep)
    job = await start(aep, segment)
    assert job["status"] == "NEW" and job["source"] == "api"
    assert job["segments"] == [
        {
            "segmentId": segment,
            "segment": {
                "id": segment,
                "expression": {
                    "type": "PQL",
                    "format": "pql/text",
                    "value": 'homeAddress.countryCode = "DE"',
                },
                "mergePolicyId": DEFAULT_MERGE_POLICY,
                "mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 1},
            },
        }
    ]
    assert job["metrics"] == {"totalTime": {"startTimeInMs": START_MS}, "profileSegmentationTime": {}}
    assert job["_links"]["cancel"] == {"href": f"/segment/jobs/{job['id']}", "method": "DELETE"}
    seen = [(await poll(aep, job["id"]))["status"] for _ in range(3)]
    assert seen == ["QUEUED", "PROCESSING", "SUCCEEDED"]
    done = await poll(aep, job["id"])
    metrics = done["metrics"]
    assert metrics["totalProfiles"] == 1050  # the default scenario's population: 1000 + 50 event-only
    members = metrics["segmentedProfileCounter"][segment]
    assert 150 < members < 400  # about a quarter of the people live in Germany
    assert sum(metrics["segmentedProfileByStatusCounter"][segment].values()) == members
    assert set(metrics["segmentedProfileByStatusCounter"][segment]) == {"realized", "existing"}
    assert max(metrics["segmentedProfileByNamespaceCounter"][segment].values()) <= members
    assert metrics["totalProfilesByMergePolicy"] == {DEFAULT_MERGE_POLICY: 1050}
    assert metrics["totalTime"]["endTimeInMs"] == done["updateTime"]


async def test_segment_jobs_in_the_control_plane_with_their_kind(
    aep: Aep, client: TestClient[Any, Any]
) -> None:
    job = await start(aep, await define(aep))
    listed = await (await client.get("/_emulator/jobs", params={"org": ORG})).json()
    assert_matches("control.jobs.response", listed)
    assert [(j["kind"], j["scenario"], j["job"]["id"]) for j in listed["jobs"]] == [
        ("segment", "segment-success", job["id"])
    ]
    forced = await client.post(f"/_emulator/jobs/{job['id']}/force", json={"status": "CANCELLING"})
    body = await forced.json()
    assert forced.status == 200 and body["kind"] == "segment" and body["job"]["status"] == "CANCELLING"
    assert_matches("control.job.response", body)
    assert (await poll(aep, job["id"]))["status"] == "CANCELLING"  # forced: the scenario no longer drives it
    done = await client.post(f"/_emulator/jobs/{job['id']}/force", json={"status": "SUCCEEDED"})
    assert (await done.json())["job"]["metrics"]["totalProfiles"] == 1050
    again = await client.post(f"/_emulator/jobs/{job['id']}/force", json={"status": "FAILED"})
    assert again.status == 409
    export = await aep.create_job(await aep.create_dataset(), headers={"x-emulator-scenario": "stuck"})
    wrong = await client.post(f"/_emulator/jobs/{export['id']}/force", json={"status": "QUEUED"})
    assert wrong.status == 400


async def test_cancel_is_cancelling_then_cancelled_and_a_finished_job_is_deleted(aep: Aep) -> None:
    job = await start(aep, await define(aep), headers={"x-emulator-scenario": "segment-stuck"})
    assert (await poll(aep, job["id"]))["status"] == "QUEUED"
    assert (await poll(aep, job["id"]))["status"] == "QUEUED"  # stuck
    await aep.advance(60)
    cancelled = await aep.call(
        "DELETE", f"{SEGMENT_JOBS}/{job['id']}", status=200, schema="segment-job.cancel.response"
    )
    assert cancelled == {
        "status": True,
        "message": f"Segment job with id '{job['id']}' has been marked for cancelling",
    }
    listed = await aep.call("GET", SEGMENT_JOBS, params={"status": "CANCELLING"}, status=200, schema=None)
    assert [j["id"] for j in listed["children"]] == [job["id"]]
    final = await poll(aep, job["id"])
    assert final["status"] == "CANCELLED"
    assert final["metrics"]["totalTime"]["endTimeInMs"] == START_MS + 60_000
    deleted = await aep.call(
        "DELETE", f"{SEGMENT_JOBS}/{job['id']}", status=200, schema="segment-job.cancel.response"
    )
    assert deleted["message"].endswith("has been deleted")
    await aep.call("GET", f"{SEGMENT_JOBS}/{job['id']}", status=404, schema="error.ups")


async def test_cancelling_ends_after_five_seconds_without_polls(aep: Aep) -> None:
    job = await start(aep, await define(aep), headers={"x-emulator-scenario": "segment-stuck"})
    await aep.call("DELETE", f"{SEGMENT_JOBS}/{job['id']}", status=200, schema=None)
    await aep.advance(5)
    listed = await aep.call("GET", SEGMENT_JOBS, status=200, schema="segment-job.list.response")
    assert listed["children"][0]["status"] == "CANCELLED"


async def test_failure_shows_the_documented_error_shape(aep: Aep) -> None:
    job = await start(aep, await define(aep), headers={"x-emulator-scenario": "segment-failure"})
    for _ in range(3):
        job = await poll(aep, job["id"])
    assert job["status"] == "FAILED"
    assert job["errors"][0].keys() == {"code", "msg", "callStack"}
    assert "totalProfiles" not in job["metrics"]


async def test_slow_takes_minutes_on_the_emulator_clock(aep: Aep) -> None:
    job = await start(aep, await define(aep), headers={"x-emulator-scenario": "segment-slow"})
    for _ in range(5):
        assert (await poll(aep, job["id"]))["status"] == "NEW"  # polls do not hurry it
    await aep.advance(120)
    assert (await poll(aep, job["id"]))["status"] == "PROCESSING"
    await aep.advance(780)
    done = await poll(aep, job["id"])
    assert done["status"] == "SUCCEEDED"
    assert done["metrics"]["profileSegmentationTime"]["totalTimeInMs"] == 780_000


async def test_queue_header_match_and_the_kind_of_a_scenario(aep: Aep, client: TestClient[Any, Any]) -> None:
    segment = await define(aep)
    await client.post("/_emulator/scenarios/next", json={"name": "segment-failure"})
    await client.post("/_emulator/scenarios/next", json={"name": "stuck"})
    export = await aep.create_job(await aep.create_dataset())  # takes the export scenario from the queue
    job = await start(aep, segment)  # takes the segment one, whatever its place in the queue
    jobs = {
        j["job"]["id"]: j["scenario"]
        for j in (await (await client.get("/_emulator/jobs?all=true")).json())["jobs"]
    }
    assert jobs[export["id"]] == "stuck" and jobs[job["id"]] == "segment-failure"
    error = await aep.call(
        "POST", SEGMENT_JOBS, json=[{"segmentId": segment}], status=400, schema="error.ups",
        headers={"x-emulator-scenario": "stuck"},
    )  # fmt: skip
    assert "for export jobs, not segment jobs" in message(error)
    matching = {
        "name": "berliners-stuck",
        "kind": "segment",
        "match": {"name": "Berlin*"},
        "steps": [{"status": "NEW"}, {"status": "QUEUED", "after": {"polls": 1}}],
    }
    assert (await client.post("/_emulator/scenarios", json=matching)).status == 201
    berlin = await define(aep, 'homeAddress.city = "Berlin"', "Berliners")
    matched = await start(aep, segment, berlin)  # any of its segments may match
    assert (await poll(aep, matched["id"]))["status"] == "QUEUED"
    assert (await poll(aep, matched["id"]))["status"] == "QUEUED"
    default = await client.put("/_emulator/scenarios/default", json={"name": "segment-stuck"})
    assert await default.json() == {"default": "segment-stuck", "kind": "segment"}
    scenarios = await (await client.get("/_emulator/scenarios")).json()
    assert scenarios["default"] == "success" and scenarios["segmentDefault"] == "segment-stuck"


async def test_faults_of_a_segment_scenario(aep: Aep, client: TestClient[Any, Any]) -> None:
    flaky = {
        "name": "flaky-segments",
        "kind": "segment",
        "steps": [{"status": "NEW"}, {"status": "SUCCEEDED", "after": {"polls": 1}}],
        "faults": [
            {"operation": "get_job", "times": 1, "respond": {"status": 503}},
            {
                "operation": "create_job",
                "times": 1,
                "respond": {"status": 429, "headers": {"Retry-After": "2"}},
            },
        ],
    }
    await client.post("/_emulator/scenarios", json=flaky)
    segment = await define(aep)
    headers = {"x-emulator-scenario": "flaky-segments"}
    refused = await aep.call(
        "POST", SEGMENT_JOBS, json=[{"segmentId": segment}], status=429, schema="error.ups", headers=headers
    )
    assert refused["status"] == 429
    job = await start(aep, segment, headers=headers)
    await aep.call("GET", f"{SEGMENT_JOBS}/{job['id']}", status=503, schema="error.ups")
    assert (await poll(aep, job["id"]))["status"] == "SUCCEEDED"


async def test_every_definition_with_a_star(aep: Aep) -> None:
    first, second = await define(aep), await define(aep, 'homeAddress.countryCode = "FR"')
    job = await aep.call(
        "POST",
        SEGMENT_JOBS,
        json={"schema": {"name": "_xdm.context.profile"}, "segments": [{"segmentId": "*"}]},
        status=200,
        schema="segment-job.response",
    )
    assert job["segments"] == [{"segmentId": "*"}]
    job = await aep.call(
        "POST", f"/_emulator/jobs/{job['id']}/force", json={"status": "SUCCEEDED"}, status=200, schema=None
    )
    assert set(job["job"]["metrics"]["segmentedProfileCounter"]) == {first, second}


async def test_bad_requests(aep: Aep) -> None:
    for body, words in (
        ([{"segmentId": "no-such-definition"}], "is not a segment definition"),
        ([], "Invalid request body"),
        ({"segments": []}, "Invalid request body"),
        ([{"id": "x"}], "Invalid request body"),
        ({"segments": [{"segmentId": "*"}]}, "has no segment definitions"),
    ):
        error = await aep.call("POST", SEGMENT_JOBS, json=body, status=400, schema="error.ups")
        assert words in message(error), message(error)
    for query in ({"status": "DONE"}, {"sort": "name:asc"}, {"limit": "0"}, {"property": "nonsense"}):
        await aep.call("GET", SEGMENT_JOBS, params=query, status=400, schema="error.ups")
    await aep.call("GET", f"{SEGMENT_JOBS}/unknown", status=404, schema="error.ups")
    await aep.call("DELETE", f"{SEGMENT_JOBS}/unknown", status=404, schema="error.ups")


async def test_list_filters_sorts_pages_and_bulk_get(aep: Aep) -> None:
    german, french = await define(aep), await define(aep, 'homeAddress.countryCode = "FR"')
    jobs = []
    for segment in (german, french, german):
        jobs.append((await start(aep, segment))["id"])
        await aep.advance(1)
    await poll(aep, jobs[0])

    async def listed(**query: Any) -> Any:
        return await aep.call(
            "GET", SEGMENT_JOBS, params=query, status=200, schema="segment-job.list.response"
        )

    assert [j["id"] for j in (await listed())["children"]] == jobs[::-1]
    assert [j["id"] for j in (await listed(sort="creationTime:asc"))["children"]] == jobs
    assert [j["id"] for j in (await listed(sort="updateTime:desc", limit=1))["children"]] == [jobs[0]]
    page = await listed(limit=2)
    assert page["_page"] == {"totalCount": 3, "pageSize": 2}
    assert page["_links"]["next"]["href"] == "/segment/jobs?start=2&limit=2"
    assert [j["id"] for j in (await listed(limit=2, start=2))["children"]] == [jobs[0]]
    assert (await listed(limit=2, start=2))["_links"] == {"next": {}}
    assert [j["id"] for j in (await listed(status="queued"))["children"]] == [jobs[0]]
    by_segment = await listed(property=f"segments~segmentId=={french}")
    assert [j["id"] for j in by_segment["children"]] == [jobs[1]]
    assert [j["id"] for j in (await listed(property="status==QUEUED"))["children"]] == [jobs[0]]
    assert (await listed(**{"snapshot.name": "daily"}))["children"] == []
    found = await aep.call(
        "POST", f"{SEGMENT_JOBS}/bulk-get", json={"ids": [{"id": jobs[0]}, {"id": "nope"}]},
        status=207, schema="segment-job.bulk-get.response",
    )  # fmt: skip
    assert list(found["results"]) == [jobs[0]]


async def test_jobs_are_partitioned_by_tenant(aep: Aep) -> None:
    job = await start(aep, await define(aep))
    other = Aep(aep.client, OTHER_ORG)
    await other.call("GET", f"{SEGMENT_JOBS}/{job['id']}", status=404, schema="error.ups")
    await other.call("DELETE", f"{SEGMENT_JOBS}/{job['id']}", status=404, schema="error.ups")
    assert (await other.call("GET", SEGMENT_JOBS, status=200, schema=None))["children"] == []
    error = await other.call(
        "POST",
        SEGMENT_JOBS,
        json=[{"segmentId": job["segments"][0]["segmentId"]}],
        status=400,
        schema="error.ups",
    )
    assert "is not a segment definition" in message(error)


async def test_a_definition_changed_later_does_not_change_a_job(aep: Aep) -> None:
    segment = await define(aep)
    job = await start(aep, segment)
    await aep.call(
        "PATCH", f"{DEFINITIONS}/{segment}",
        json={"expression": {"type": "PQL", "format": "pql/text", "value": 'homeAddress.countryCode = "GB"'}},
        status=200, schema=None,
    )  # fmt: skip
    for _ in range(3):
        done = await poll(aep, job["id"])
    assert done["segments"][0]["segment"]["expression"]["value"] == 'homeAddress.countryCode = "DE"'
    again = await start(aep, segment)
    forced = await aep.call(
        "POST", f"/_emulator/jobs/{again['id']}/force", json={"status": "SUCCEEDED"}, status=200, schema=None
    )
    assert forced["job"]["metrics"]["segmentedProfileCounter"] != done["metrics"]["segmentedProfileCounter"]


@pytest.fixture
def limited_app() -> web.Application:
    return create_app(Options(clock="manual", start_time_ms=START_MS, max_segment_jobs_processing=2))


async def test_the_processing_limit_is_the_documented_429(
    aiohttp_client: ClientFactory, limited_app: web.Application
) -> None:
    aep = Aep(await aiohttp_client(limited_app))
    segment = await define(aep)
    headers = {"x-emulator-scenario": "segment-stuck"}
    first = await start(aep, segment, headers=headers)
    await start(aep, segment, headers=headers)
    error = await aep.call(
        "POST", SEGMENT_JOBS, json=[{"segmentId": segment}], status=429, schema="error.ups", headers=headers
    )
    assert "too many segmentation jobs in processing" in message(error)
    await Aep(aep.client, OTHER_ORG).call(
        "POST",
        SEGMENT_JOBS,
        json=[{"segmentId": await define(Aep(aep.client, OTHER_ORG))}],
        status=200,
        schema=None,
    )  # per tenant
    await aep.call("DELETE", f"{SEGMENT_JOBS}/{first['id']}", status=200, schema=None)
    await aep.advance(5)  # CANCELLED: room for one more
    await start(aep, segment, headers=headers)


async def test_the_state_file_keeps_segment_jobs(tmp_path: Any) -> None:
    from emulator.backend import Backend
    from emulator.store import Tenant

    options = Options(clock="manual", start_time_ms=START_MS)
    backend = Backend(options)
    tenant = Tenant(ORG, "prod")
    expression = {"type": "PQL", "format": "pql/text", "value": 'homeAddress.countryCode = "DE"'}
    body = {"name": "de", "expression": expression, "schema": {"name": "_xdm.context.profile"}}
    definition = backend.definitions.create(tenant, body)
    created = backend.segment_jobs.create(
        tenant, [{"segmentId": definition.id}], requested_scenario="segment-stuck", request_id=None,
        profile_instance_id=None,
    )  # fmt: skip
    assert created.job is not None
    backend.segment_jobs.poll(created.job)
    backend.segment_jobs.cancel(tenant, created.job.id)
    saved = backend.state()
    again = Backend(options)
    again.restore(saved)
    job = again.segment_jobs.get(tenant, created.job.id)
    assert job.progress == created.job.progress and job.cancel_step == created.job.cancel_step
    again.segment_jobs.poll(job)
    assert job.progress.status == "CANCELLED"
    assert again.state()["audience"]["mergePolicies"] == saved["audience"]["mergePolicies"]
