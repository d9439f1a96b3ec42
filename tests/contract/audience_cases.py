"""Contract cases of the audience leg: segment definitions, segment jobs, merge policies, and the control
plane's view of definitions. Registered into tests/contract/cases.py's CASES (imported at its end). The
gateway's refusals and oversized bodies are generated there for these operations too; the scenario faults
of segment jobs are generated here."""

from __future__ import annotations

from typing import Any

from tests.contract.cases import UNKNOWN_ID, case, emulator
from tests.contract.support import EmulatorTarget, Reply, Target

UPS = "/data/core/ups"
DEFINITIONS = f"{UPS}/segment/definitions"
SEGMENT_JOBS = f"{UPS}/segment/jobs"
POLICIES = f"{UPS}/config/mergePolicies"
# Scenario fault operation names of the segment-job operations.
SEGMENT_FAULTS = {
    "createSegmentJob": "create_job",
    "listSegmentJobs": "list_jobs",
    "getSegmentJob": "get_job",
    "deleteSegmentJob": "cancel_job",
}


def definition_body(name: str = "contract segment", value: str = 'homeAddress.countryCode = "DE"') -> Any:
    return {
        "name": name,
        "expression": {"type": "PQL", "format": "pql/text", "value": value},
        "schema": {"name": "_xdm.context.profile"},
        "ttlInDays": 30,
    }


async def definition(emu: EmulatorTarget, name: str = "contract segment") -> str:
    reply = await emu.call("createSegmentDefinition", 200, json_body=definition_body(name))
    return str(reply.json()["id"])


async def segment_job(emu: EmulatorTarget, headers: dict[str, str] | None = None) -> dict[str, Any]:
    segment = await definition(emu)
    reply = await emu.call("createSegmentJob", 200, json_body=[{"segmentId": segment}], headers=headers)
    job: dict[str, Any] = reply.json()
    return job


async def policy(emu: EmulatorTarget) -> str:
    body = {
        "name": "contract policy",
        "identityGraph": {"type": "none"},
        "attributeMerge": {"type": "timestampOrdered"},
        "schema": {"name": "_xdm.context.profile"},
    }
    return str((await emu.call("createMergePolicy", 200, json_body=body)).json()["id"])


# -- segment definitions ----------------------------------------------------------------------------


@case("createSegmentDefinition", 200)
async def definition_created(target: Target) -> Reply:
    return await target.request("POST", DEFINITIONS, json_body=definition_body())


@case("createSegmentDefinition", 400, schema="error.ups")
async def definition_that_does_not_parse(target: Target) -> Reply:
    return await target.request("POST", DEFINITIONS, json_body=definition_body(value='homeAddress.city = "'))


@case("createSegmentDefinition", 422)
async def definition_name_taken(target: Target) -> Reply:
    await definition(emulator(target), "taken")
    return await target.request("POST", DEFINITIONS, json_body=definition_body("taken"))


@case("listSegmentDefinitions", 200, drift="read")
async def definitions_listed(target: Target) -> Reply:
    return await target.request("GET", DEFINITIONS, params={"limit": "2"})


@case("listSegmentDefinitions", 200)
async def definitions_paged(target: Target) -> Reply:
    for n in range(3):
        await definition(emulator(target), f"paged {n}")
    return await target.request("GET", DEFINITIONS, params={"limit": "2", "sort": "name:asc"})


@case("listSegmentDefinitions", 400, drift="read", schema="error.ups")
async def definitions_bad_sort(target: Target) -> Reply:
    return await target.request("GET", DEFINITIONS, params={"sort": "colour:asc"})


@case("bulkGetSegmentDefinitions", 207)
async def definitions_bulk(target: Target) -> Reply:
    segment = await definition(emulator(target))
    return await target.request(
        "POST", f"{DEFINITIONS}/bulk-get", json_body={"ids": [{"id": segment}, {"id": UNKNOWN_ID}]}
    )


@case("bulkGetSegmentDefinitions", 400, schema="error.ups")
async def definitions_bulk_without_ids(target: Target) -> Reply:
    return await target.request("POST", f"{DEFINITIONS}/bulk-get", json_body={"ids": []})


@case("getSegmentDefinition", 200)
async def definition_got(target: Target) -> Reply:
    return await target.request("GET", f"{DEFINITIONS}/{await definition(emulator(target))}")


@case("getSegmentDefinition", 404, drift="read")
async def definition_unknown(target: Target) -> Reply:
    return await target.request("GET", f"{DEFINITIONS}/{UNKNOWN_ID}")


@case("patchSegmentDefinition", 200)
async def definition_patched(target: Target) -> Reply:
    segment = await definition(emulator(target))
    return await target.request("PATCH", f"{DEFINITIONS}/{segment}", json_body={"name": "renamed"})


@case("patchSegmentDefinition", 400, schema="error.ups")
async def definition_patched_with_bad_pql(target: Target) -> Reply:
    segment = await definition(emulator(target))
    body = {"expression": {"type": "PQL", "format": "pql/text", "value": "a ="}}
    return await target.request("PATCH", f"{DEFINITIONS}/{segment}", json_body=body)


@case("patchSegmentDefinition", 404)
async def definition_patch_unknown(target: Target) -> Reply:
    return await emulator(target).request("PATCH", f"{DEFINITIONS}/{UNKNOWN_ID}", json_body={"name": "x"})


@case("patchSegmentDefinition", 422)
async def definition_renamed_to_a_taken_name(target: Target) -> Reply:
    emu = emulator(target)
    await definition(emu, "first")
    second = await definition(emu, "second")
    return await emu.request("PATCH", f"{DEFINITIONS}/{second}", json_body={"name": "first"})


@case("deleteSegmentDefinition", 200)
async def definition_deleted(target: Target) -> Reply:
    return await target.request("DELETE", f"{DEFINITIONS}/{await definition(emulator(target))}")


@case("deleteSegmentDefinition", 404, drift="read")
async def definition_delete_unknown(target: Target) -> Reply:
    return await target.request("DELETE", f"{DEFINITIONS}/{UNKNOWN_ID}")


# -- segment jobs ---------------------------------------------------------------------------------------


@case("createSegmentJob", 200)
async def segment_job_created(target: Target) -> Reply:
    segment = await definition(emulator(target))
    return await target.request("POST", SEGMENT_JOBS, json_body=[{"segmentId": segment}])


@case("createSegmentJob", 400, schema="error.ups")
async def segment_job_for_no_definition(target: Target) -> Reply:
    return await emulator(target).request("POST", SEGMENT_JOBS, json_body=[{"segmentId": UNKNOWN_ID}])


@case("createSegmentJob", 429)
async def segment_jobs_in_processing_over_the_limit(target: Target) -> Reply:
    emu = await emulator(target).with_options(max_segment_jobs_processing=1)
    segment = await definition(emu)
    await emu.call("createSegmentJob", 200, json_body=[{"segmentId": segment}])
    return await emu.request("POST", SEGMENT_JOBS, json_body=[{"segmentId": segment}])


@case("listSegmentJobs", 200, drift="read")
async def segment_jobs_listed(target: Target) -> Reply:
    return await target.request("GET", SEGMENT_JOBS, params={"limit": "2"})


@case("listSegmentJobs", 200)
async def segment_jobs_listed_with_a_finished_one(target: Target) -> Reply:
    emu = emulator(target)
    job = await segment_job(emu)
    for _ in range(3):
        await emu.call("getSegmentJob", 200, f"{SEGMENT_JOBS}/{job['id']}")
    return await emu.request("GET", SEGMENT_JOBS, params={"limit": "1", "status": "SUCCEEDED"})


@case("listSegmentJobs", 400, drift="read", schema="error.ups")
async def segment_jobs_bad_status(target: Target) -> Reply:
    return await target.request("GET", SEGMENT_JOBS, params={"status": "DONE"})


@case("bulkGetSegmentJobs", 207)
async def segment_jobs_bulk(target: Target) -> Reply:
    job = await segment_job(emulator(target))
    return await target.request("POST", f"{SEGMENT_JOBS}/bulk-get", json_body={"ids": [{"id": job["id"]}]})


@case("bulkGetSegmentJobs", 400, schema="error.ups")
async def segment_jobs_bulk_bad_body(target: Target) -> Reply:
    return await target.request("POST", f"{SEGMENT_JOBS}/bulk-get", json_body={"names": ["x"]})


@case("getSegmentJob", 200)
async def segment_job_succeeded(target: Target) -> Reply:
    emu = emulator(target)
    job = await segment_job(emu)
    for _ in range(2):
        await emu.call("getSegmentJob", 200, f"{SEGMENT_JOBS}/{job['id']}")
    reply = await emu.request("GET", f"{SEGMENT_JOBS}/{job['id']}")
    assert reply.json()["status"] == "SUCCEEDED" and "totalProfiles" in reply.json()["metrics"], reply
    return reply


@case("getSegmentJob", 200)
async def segment_job_failed(target: Target) -> Reply:
    emu = emulator(target)
    job = await segment_job(emu, {"x-emulator-scenario": "segment-failure"})
    for _ in range(2):
        await emu.call("getSegmentJob", 200, f"{SEGMENT_JOBS}/{job['id']}")
    reply = await emu.request("GET", f"{SEGMENT_JOBS}/{job['id']}")
    assert reply.json()["errors"], reply
    return reply


@case("getSegmentJob", 404, drift="read")
async def segment_job_unknown(target: Target) -> Reply:
    return await target.request("GET", f"{SEGMENT_JOBS}/{UNKNOWN_ID}")


@case("deleteSegmentJob", 200)
async def segment_job_cancelled(target: Target) -> Reply:
    job = await segment_job(emulator(target), {"x-emulator-scenario": "segment-stuck"})
    return await target.request("DELETE", f"{SEGMENT_JOBS}/{job['id']}")


@case("deleteSegmentJob", 404, drift="read")
async def segment_job_cancel_unknown(target: Target) -> Reply:
    return await target.request("DELETE", f"{SEGMENT_JOBS}/{UNKNOWN_ID}")


def _segment_fault(operation_id: str, status: int) -> None:
    async def run(target: Target) -> Reply:
        emu = emulator(target)
        name = f"fault-{operation_id}-{status}"
        respond: dict[str, Any] = {"status": status}
        if status == 429:
            respond["headers"] = {"Retry-After": "2"}
        scenario = {
            "name": name,
            "kind": "segment",
            "steps": [{"status": "NEW"}, {"status": "SUCCEEDED", "after": {"polls": 1}}],
            "faults": [{"operation": SEGMENT_FAULTS[operation_id], "times": 1, "respond": respond}],
        }
        await emu.control("POST", "/scenarios", scenario)
        if operation_id == "listSegmentJobs":
            await emu.control("PUT", "/scenarios/default", {"name": name})
            return await emu.request("GET", SEGMENT_JOBS)
        segment = await definition(emu)
        headers = {"x-emulator-scenario": name}
        if operation_id == "createSegmentJob":
            return await emu.request(
                "POST", SEGMENT_JOBS, json_body=[{"segmentId": segment}], headers=headers
            )
        job = (
            await emu.call("createSegmentJob", 200, json_body=[{"segmentId": segment}], headers=headers)
        ).json()
        method = "GET" if operation_id == "getSegmentJob" else "DELETE"
        return await emu.request(method, f"{SEGMENT_JOBS}/{job['id']}")

    run.__name__ = "scenario_fault"
    case(operation_id, status)(run)


for _operation in SEGMENT_FAULTS:
    for _status in (429, 503):
        if not (_operation == "createSegmentJob" and _status == 429):  # produced by the limit above
            _segment_fault(_operation, _status)
_segment_fault("createSegmentJob", 429)


# -- merge policies -------------------------------------------------------------------------------------


@case("listMergePolicies", 200, drift="read")
async def policies_listed(target: Target) -> Reply:
    return await target.request("GET", POLICIES, params={"limit": "1"})


@case("listMergePolicies", 400, drift="read", schema="error.ups")
async def policies_bad_order(target: Target) -> Reply:
    return await target.request("GET", POLICIES, params={"orderBy": "colour"})


@case("createMergePolicy", 200)
async def policy_created(target: Target) -> Reply:
    body = {
        "name": "Loyalty members ordered by ID",
        "identityGraph": {"type": "none"},
        "attributeMerge": {"type": "dataSetPrecedence", "order": ["5b76f86b85d0e00000be5c8b"]},
        "schema": {"name": "_xdm.context.profile"},
        "default": True,
    }
    return await emulator(target).request("POST", POLICIES, json_body=body)


@case("createMergePolicy", 400, schema="error.ups")
async def policy_precedence_without_order(target: Target) -> Reply:
    body = {
        "name": "no order",
        "identityGraph": {"type": "none"},
        "attributeMerge": {"type": "dataSetPrecedence"},
        "schema": {"name": "_xdm.context.profile"},
    }
    return await emulator(target).request("POST", POLICIES, json_body=body)


@case("bulkGetMergePolicies", 207)
async def policies_bulk(target: Target) -> Reply:
    created = await policy(emulator(target))
    return await target.request("POST", f"{POLICIES}/bulk-get", json_body={"ids": [{"id": created}]})


@case("bulkGetMergePolicies", 400, schema="error.ups")
async def policies_bulk_bad_body(target: Target) -> Reply:
    return await target.request("POST", f"{POLICIES}/bulk-get", json_body=[])


@case("getMergePolicy", 200)
async def policy_got(target: Target) -> Reply:
    return await target.request("GET", f"{POLICIES}/{await policy(emulator(target))}")


@case("getMergePolicy", 404, drift="read")
async def policy_unknown(target: Target) -> Reply:
    return await target.request("GET", f"{POLICIES}/{UNKNOWN_ID}")


@case("patchMergePolicy", 200)
async def policy_patched(target: Target) -> Reply:
    created = await policy(emulator(target))
    return await target.request(
        "PATCH", f"{POLICIES}/{created}", json_body={"op": "add", "path": "/default", "value": "true"}
    )


@case("patchMergePolicy", 400, schema="error.ups")
async def policy_patched_on_an_unknown_path(target: Target) -> Reply:
    created = await policy(emulator(target))
    return await target.request(
        "PATCH", f"{POLICIES}/{created}", json_body={"op": "add", "path": "/colour", "value": "red"}
    )


@case("patchMergePolicy", 404)
async def policy_patch_unknown(target: Target) -> Reply:
    return await emulator(target).request(
        "PATCH", f"{POLICIES}/{UNKNOWN_ID}", json_body={"op": "add", "path": "/name", "value": "x"}
    )


@case("deleteMergePolicy", 200)
async def policy_deleted(target: Target) -> Reply:
    return await target.request("DELETE", f"{POLICIES}/{await policy(emulator(target))}")


@case("deleteMergePolicy", 400, schema="error.ups")
async def policy_default_not_deleted(target: Target) -> Reply:
    emu = emulator(target)
    listed = (await emu.call("listMergePolicies", 200, params={"default": "true"})).json()
    return await emu.request("DELETE", f"{POLICIES}/{listed['children'][0]['id']}")


@case("deleteMergePolicy", 404, drift="read")
async def policy_delete_unknown(target: Target) -> Reply:
    return await target.request("DELETE", f"{POLICIES}/{UNKNOWN_ID}")


# -- the control plane ----------------------------------------------------------------------------------


@case("listSegmentMembership", 200)
async def membership_of_definitions(target: Target) -> Reply:
    emu = emulator(target)
    await definition(emu)
    await emu.call(
        "createSegmentDefinition", 200, json_body=definition_body("outside", 'workAddress.country = "US"')
    )
    reply = await emu.request("GET", "/_emulator/segments", params={"all": "true"})
    assert {d["membership"] for d in reply.json()["definitions"]} == {"pql", "hash"}, reply
    return reply


@case("listSegmentMembership", 400)
async def membership_without_a_tenant(target: Target) -> Reply:
    return await emulator(target).request("GET", "/_emulator/segments")


@case("forceJob", 200)
async def segment_job_forced(target: Target) -> Reply:
    emu = emulator(target)
    job = await segment_job(emu, {"x-emulator-scenario": "segment-stuck"})
    return await emu.request("POST", f"/_emulator/jobs/{job['id']}/force", json_body={"status": "SUCCEEDED"})
