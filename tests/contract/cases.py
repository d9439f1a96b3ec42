"""One or more cases for every (operation, status) the OpenAPI document promises.

A case makes the emulator (or AEP, in drift mode) answer one operation with one status; the test checks the
reply against the document. `drift` says whether a case may run against a real sandbox: "read" (reads, or is
refused before anything is written), "write" (creates objects and deletes them again; only with
AEP_DRIFT_ALLOW_WRITES=1), or None (needs the emulator's control plane or options).

The cases for the gateway's refusals, for oversized bodies and for injected faults are generated from the
document itself, for every operation that can produce them.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from tests.contract.support import (
    BATCHES,
    DATASETS,
    EXPORT,
    JOBS,
    TOKEN,
    AepTarget,
    EmulatorTarget,
    Reply,
    Target,
    document,
)

Drift = Literal["read", "write"] | None
Run = Callable[[Target], Awaitable[Reply]]
UNKNOWN_ID = "0000000000000000deadbeef"
UNKNOWN_JOB = "987654321987654"
FORM = "application/x-www-form-urlencoded"
TOO_LARGE = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
# Scenario fault operation names (schemas/scenario.schema.json) of the operations that can suffer them.
FAULTS = {
    "createExportJob": "create_job",
    "listExportJobs": "list_jobs",
    "listExportJobsSlash": "list_jobs",
    "getExportJob": "get_job",
    "deleteExportJob": "cancel_job",
    "listBatchFiles": "list_batch_files",
    "getFile": "download_file",
    "headFile": "download_file",
}


@dataclass(frozen=True)
class Case:
    operation_id: str
    status: int
    name: str
    run: Run
    drift: Drift = None
    schema: str | None = None  # the one schema file the body must match, where the document allows several

    @property
    def id(self) -> str:
        return f"{self.operation_id}-{self.status}-{self.name}"


CASES: list[Case] = []


def case(
    operation_id: str, status: int, *, drift: Drift = None, schema: str | None = None
) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        CASES.append(Case(operation_id, status, run.__name__, run, drift, schema))
        return run

    return register


def emulator(target: Target) -> EmulatorTarget:
    """Cases without `drift` run against the emulator only."""
    assert isinstance(target, EmulatorTarget)
    return target


def token_form(target: Target, **changes: str | None) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": "contract",
        "client_secret": "s",
        "scope": "openid",
    }
    if isinstance(target, AepTarget):
        form.update(target.credentials(), scope=target.config.scopes)
    form.update(changes)  # type: ignore[arg-type]
    return {k: v for k, v in form.items() if v is not None}


def encoded(form: dict[str, str]) -> str:
    return urlencode(form)


# -- IMS --------------------------------------------------------------------------------------------


@case("imsToken", 200, drift="read")
async def minted(target: Target) -> Reply:
    return await target.request(
        "POST", TOKEN, data=encoded(token_form(target)), headers={"Content-Type": FORM}
    )


@case("imsToken", 400, drift="read")
async def missing_secret(target: Target) -> Reply:
    form = token_form(target, client_secret=None)
    return await target.request("POST", TOKEN, data=encoded(form), headers={"Content-Type": FORM})


@case("imsToken", 400, drift="read")
async def unsupported_grant(target: Target) -> Reply:
    form = token_form(target, grant_type="password")
    return await target.request("POST", TOKEN, data=encoded(form), headers={"Content-Type": FORM})


@case("imsToken", 401, drift="read")
async def wrong_secret(target: Target) -> Reply:
    if isinstance(target, EmulatorTarget):
        target = await target.with_options(credentials_file=_credentials_file())
        form = token_form(target, client_id="known-client", client_secret="wrong")
    else:
        form = token_form(target, client_secret="not-the-secret")
    return await target.request("POST", TOKEN, data=encoded(form), headers={"Content-Type": FORM})


@case("imsTokenV2", 200)
async def minted_by_v2(target: Target) -> Reply:
    # Adobe's IMS Postman collection mints tokens with /ims/token/v2: it answers as v3 does.
    form = encoded(token_form(target))
    return await target.request("POST", "/ims/token/v2", data=form, headers={"Content-Type": FORM})


@case("imsTokenV2", 400)
async def v2_missing_secret(target: Target) -> Reply:
    form = encoded(token_form(target, client_secret=None))
    return await target.request("POST", "/ims/token/v2", data=form, headers={"Content-Type": FORM})


@case("imsTokenV2", 401)
async def v2_wrong_secret(target: Target) -> Reply:
    emu = await emulator(target).with_options(credentials_file=_credentials_file())
    form = encoded(token_form(emu, client_id="known-client", client_secret="wrong"))
    return await emu.request("POST", "/ims/token/v2", data=form, headers={"Content-Type": FORM})


@cache
def _credentials_file() -> Path:
    """One credentials file for the run (removed at exit): IMS then knows `known-client` only."""
    handle, name = tempfile.mkstemp(suffix=".yaml")
    os.close(handle)
    path = Path(name)
    path.write_text("clients:\n  known-client:\n    secret: right\n")
    atexit.register(path.unlink, missing_ok=True)
    return path


# -- Catalog ----------------------------------------------------------------------------------------


@case("createDataset", 201, drift="write")
async def dataset_created(target: Target) -> Reply:
    body = {
        "name": "aep-emulator drift check",
        "schemaRef": {
            "id": "https://ns.adobe.com/xdm/context/profile__union",
            "contentType": "application/vnd.adobe.xed+json;version=1",
        },
        "fileDescription": {"persisted": True, "format": "parquet"},
    }
    return await _create(target, "POST", DATASETS, body, params={"requestDataSource": "true"})


@case("createDataset", 400, drift="write", schema="error.problem")
async def dataset_body_breaks_schema(target: Target) -> Reply:
    return await _create(target, "POST", DATASETS, {"name": 5})


@case("createDataset", 400, drift="read", schema="error.problem")
async def dataset_without_content_type(target: Target) -> Reply:
    return await target.request("POST", DATASETS, data='{"name": "x"}', drop=("Content-Type",))


async def _create(target: Target, method: str, path: str, body: Any, params: Any = None) -> Reply:
    """A request that creates something on success: against AEP, only with writes allowed, and undone."""
    if isinstance(target, AepTarget):
        target.require_writes()
    reply = await target.request(method, path, json_body=body, params=params)
    if isinstance(target, AepTarget) and reply.status < 300:
        if path == DATASETS:
            target.delete_later(f"{DATASETS}/{reply.json()[0].rsplit('/', 1)[1]}")
        elif path == JOBS:
            target.delete_later(f"{JOBS}/{reply.json()['id']}")
    return reply


@case("listDatasets", 200, drift="read", schema="dataset.map.response")
async def datasets_listed(target: Target) -> Reply:
    if isinstance(target, EmulatorTarget):
        await target.create_dataset()
    return await target.request("GET", DATASETS, params={"limit": "3"})


@case("listDatasets", 200, drift="read", schema="dataset.map.projected.response")
async def datasets_projected(target: Target) -> Reply:
    if isinstance(target, EmulatorTarget):
        await target.create_dataset()
    return await target.request("GET", DATASETS, params={"limit": "3", "properties": "name,schemaRef"})


@case("listDatasets", 400, drift="read", schema="error.problem")
async def datasets_bad_limit(target: Target) -> Reply:
    return await target.request("GET", DATASETS, params={"limit": "zero"})


@case("listDatasets", 400, drift="read", schema="error.problem")
async def datasets_repeated_parameter(target: Target) -> Reply:
    return await target.request("GET", f"{DATASETS}?start=&start=x")


@case("getDataset", 200, drift="read", schema="dataset.map.response")
async def dataset_found(target: Target) -> Reply:
    return await target.request("GET", f"{DATASETS}/{await target.dataset_id()}")


@case("getDataset", 200, drift="read", schema="dataset.map.projected.response")
async def dataset_projected(target: Target) -> Reply:
    return await target.request(
        "GET", f"{DATASETS}/{await target.dataset_id()}", params={"properties": "name"}
    )


@case("getDataset", 404, drift="read")
async def dataset_unknown(target: Target) -> Reply:
    return await target.request("GET", f"{DATASETS}/{UNKNOWN_ID}")


@case("getDataset", 200, drift="read", schema="dataset.map.projected.response")
async def datasets_by_several_ids(target: Target) -> Reply:
    # look-up-multiple-objects.md: comma-separated ids, each object under its id.
    dataset_id = await target.dataset_id()
    return await target.request("GET", f"{DATASETS}/{dataset_id},{UNKNOWN_ID}", params={"properties": "name"})


@case("listDatasets", 200, drift="read", schema="dataset.map.projected.response")
async def datasets_filtered(target: Target) -> Reply:
    # filter-data.md: a negated simple filter, a tag filter, a `property` condition, two sort keys.
    if isinstance(target, EmulatorTarget):
        await target.create_dataset()
    query = "limit=3&name=!nothing-is-called-this&property=name&orderBy=name,desc:updated&properties=name"
    return await target.request("GET", f"{DATASETS}?{query}")


@case("listDatasets", 400, drift="read", schema="error.problem")
async def datasets_bad_property(target: Target) -> Reply:
    return await target.request("GET", DATASETS, params={"property": "name~("})


@case("listBatches", 200, drift="read", schema="batch.map.response")
async def batches_listed(target: Target) -> Reply:
    job = await target.finished_job()
    return await target.request(
        "GET", BATCHES, params={"dataSet": job["destination"]["datasetId"], "limit": "3"}
    )


@case("listBatches", 200, drift="read", schema="batch.map.projected.response")
async def batches_projected(target: Target) -> Reply:
    await target.finished_job()
    return await target.request("GET", BATCHES, params={"limit": "3", "properties": "status,relatedObjects"})


@case("listBatches", 400, drift="read", schema="error.problem")
async def batches_bad_order(target: Target) -> Reply:
    return await target.request("GET", BATCHES, params={"orderBy": "sideways:created"})


@case("listBatches", 400, schema="error.problem")
async def batches_unknown_filter(target: Target) -> Reply:
    # A filter the emulator does not know is named in a 400, never silently ignored.
    return await target.request("GET", BATCHES, params={"connectorId": "x"})


@case("listBatchesSlash", 200, drift="read", schema="batch.map.response")
async def batches_listed_with_slash(target: Target) -> Reply:
    # The Data Access tutorial prints `GET /data/foundation/catalog/batches/`.
    job = await target.finished_job()
    return await target.request("GET", f"{BATCHES}/", params={"dataSet": job["destination"]["datasetId"]})


@case("listBatchesSlash", 400, drift="read", schema="error.problem")
async def batches_slash_bad_limit(target: Target) -> Reply:
    return await target.request("GET", f"{BATCHES}/", params={"limit": "0"})


@case("getBatch", 200, drift="read", schema="batch.map.response")
async def batch_found(target: Target) -> Reply:
    return await target.request("GET", f"{BATCHES}/{await target.batch_id()}")


@case("getBatch", 200, schema="batch.map.response")
async def batch_of_failed_job(target: Target) -> Reply:
    emu = emulator(target)
    job = await emu.create_job(headers={"x-emulator-scenario": "failure"})
    await emu.control("POST", f"/jobs/{job['id']}/force", {"status": "FAILED"})
    reply = await emu.request("GET", f"{BATCHES}/{job['destination']['batchId']}")
    assert next(iter(reply.json().values()))["status"] == "failed", reply
    return reply


@case("getBatch", 404, drift="read")
async def batch_unknown(target: Target) -> Reply:
    return await target.request("GET", f"{BATCHES}/{UNKNOWN_ID}")


# -- Export jobs ------------------------------------------------------------------------------------


@case("createExportJob", 200, drift="write")
async def job_created(target: Target) -> Reply:
    if isinstance(target, EmulatorTarget):
        dataset_id = await target.create_dataset()
    else:
        dataset_reply = await dataset_created(target)
        assert dataset_reply.status == 201, str(dataset_reply)
        dataset_id = dataset_reply.json()[0].rsplit("/", 1)[1]
    body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
    return await _create(target, "POST", JOBS, body)


@case("createExportJob", 200)
async def segment_job_created(target: Target) -> Reply:
    emu = emulator(target)
    body = {
        "fields": "identityMap,person.name",
        "filter": {"segments": [{"segmentId": "seg-a"}, {"segmentId": "seg-b", "status": ["exited"]}]},
        "destination": {"datasetId": await emu.create_dataset(), "segmentPerBatch": True},
        "schema": {"name": "_xdm.context.profile"},
    }
    reply = await emu.request("POST", JOBS, json_body=body)
    assert len(reply.json()["destination"]["batches"]) == 2, reply
    return reply


@case("createExportJob", 400, drift="write", schema="error.ups")
async def job_body_breaks_schema(target: Target) -> Reply:
    return await _create(target, "POST", JOBS, {"destination": {"datasetId": UNKNOWN_ID}})


@case("createExportJob", 400, schema="error.ups")
async def job_for_unknown_dataset(target: Target) -> Reply:
    body = {"destination": {"datasetId": UNKNOWN_ID}, "schema": {"name": "_xdm.context.profile"}}
    return await emulator(target).request("POST", JOBS, json_body=body)


@case("createExportJob", 400, drift="read", schema="error.problem")
async def job_without_content_type(target: Target) -> Reply:
    return await target.request("POST", JOBS, data="{}", drop=("Content-Type",))


@case("createExportJob", 429)
async def job_over_the_tenant_limit(target: Target) -> Reply:
    emu = await emulator(target).with_options(max_jobs_per_tenant=1)
    dataset_id = await emu.create_dataset()
    await emu.create_job(dataset_id)
    body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
    return await emu.request("POST", JOBS, json_body=body)


for _path, _operation in ((JOBS, "listExportJobs"), (f"{JOBS}/", "listExportJobsSlash")):

    def _listing_cases(path: str, operation: str) -> None:
        @case(operation, 200, drift="read")
        async def jobs_listed(target: Target) -> Reply:
            if isinstance(target, EmulatorTarget):
                await target.create_job()
                await target.finished_job()
            return await target.request("GET", path, params={"limit": "1"})

        @case(operation, 200, drift="read")
        async def jobs_by_update_time(target: Target) -> Reply:
            return await target.request("GET", path, params={"sort": "updateTime:asc", "status": "SUCCEEDED"})

        @case(operation, 400, drift="read", schema="error.ups")
        async def jobs_bad_limit(target: Target) -> Reply:
            return await target.request("GET", path, params={"limit": "0"})

        @case(operation, 400, drift="read", schema="error.ups")
        async def jobs_repeated_parameter(target: Target) -> Reply:
            return await target.request("GET", f"{path}?sort=&sort=sideways")

    _listing_cases(_path, _operation)


@case("getExportJob", 200, drift="read")
async def job_found(target: Target) -> Reply:
    return await target.request("GET", f"{JOBS}/{(await target.finished_job())['id']}")


@case("getExportJob", 400, drift="read", schema="error.ups")
async def job_repeated_parameter(target: Target) -> Reply:
    return await target.request("GET", f"{JOBS}/{UNKNOWN_JOB}?fields=a&fields=b")


@case("getExportJob", 404, drift="read")
async def job_unknown(target: Target) -> Reply:
    return await target.request("GET", f"{JOBS}/{UNKNOWN_JOB}")


@case("deleteExportJob", 200, drift="write")
async def job_cancelled(target: Target) -> Reply:
    created = await job_created(target)
    assert created.status == 200, str(created)
    reply = await target.request("DELETE", f"{JOBS}/{created.json()['id']}")
    if isinstance(target, EmulatorTarget):
        assert reply.json()["message"] == "Export job has been marked for cancelling", reply
    return reply


@case("deleteExportJob", 200)
async def finished_job_deleted(target: Target) -> Reply:
    emu = emulator(target)
    reply = await emu.request("DELETE", f"{JOBS}/{(await emu.finished_job())['id']}")
    assert reply.json()["message"] == "Export job has been deleted", reply
    return reply


@case("deleteExportJob", 404, drift="read")
async def delete_unknown_job(target: Target) -> Reply:
    return await target.request("DELETE", f"{JOBS}/{UNKNOWN_JOB}")


# -- Data Access ------------------------------------------------------------------------------------


@case("listBatchFiles", 200, drift="read")
async def batch_files_listed(target: Target) -> Reply:
    reply = await target.request("GET", f"{EXPORT}/batches/{await target.batch_id()}/files")
    assert reply.json()["data"], reply
    return reply


@case("listBatchFiles", 200, drift="read")
async def batch_files_paged(target: Target) -> Reply:
    path = f"{EXPORT}/batches/{await target.batch_id()}/files"
    return await target.request("GET", path, params={"start": "0", "limit": "1"})


@case("listBatchFiles", 200)
async def batch_files_while_processing(target: Target) -> Reply:
    emu = emulator(target)
    job = await emu.create_job(headers={"x-emulator-scenario": "stuck"})
    reply = await emu.request("GET", f"{EXPORT}/batches/{job['destination']['batchId']}/files")
    assert reply.json()["data"] == [], reply
    return reply


@case("listBatchFiles", 400, drift="read", schema="error.problem")
async def batch_files_bad_limit(target: Target) -> Reply:
    return await target.request("GET", f"{EXPORT}/batches/{UNKNOWN_ID}/files", params={"limit": "-1"})


@case("listBatchFiles", 404, drift="read")
async def batch_files_unknown_batch(target: Target) -> Reply:
    return await target.request("GET", f"{EXPORT}/batches/{UNKNOWN_ID}/files")


@case("getFile", 200, drift="read", schema="data-access.file-listing.response")
async def file_listing(target: Target) -> Reply:
    file_id, _ = await target.file()
    return await target.request("GET", f"{EXPORT}/files/{file_id}")


@case("getFile", 200)
async def file_bytes(target: Target) -> Reply:
    emu = emulator(target)
    file_id, name = await emu.file()
    reply = await emu.request("GET", f"{EXPORT}/files/{file_id}", params={"path": name})
    assert reply.body[:4] == b"PAR1", reply
    return reply


@case("getFile", 200)
async def json_lines_file_bytes(target: Target) -> Reply:
    emu = emulator(target)
    dataset_id = await emu.create_dataset(fileDescription={"format": "json"})
    job = await emu.create_job(dataset_id)
    while job["status"] != "SUCCEEDED":
        job = await emu.poll(job["id"])
    files = await emu.call("listBatchFiles", 200, f"{EXPORT}/batches/{job['destination']['batchId']}/files")
    file_id = files.json()["data"][0]["dataSetFileId"]
    name = (await emu.call("getFile", 200, f"{EXPORT}/files/{file_id}")).json()["data"][0]["name"]
    return await emu.request("GET", f"{EXPORT}/files/{file_id}", params={"path": name})


@case("getFile", 206, drift="read")
async def file_range(target: Target) -> Reply:
    file_id, name = await target.file()
    return await target.request(
        "GET", f"{EXPORT}/files/{file_id}", params={"path": name}, headers={"Range": "bytes=0-99"}
    )


@case("getFile", 400, drift="read", schema="error.problem")
async def file_bad_range(target: Target) -> Reply:
    file_id, name = await target.file()
    return await target.request(
        "GET", f"{EXPORT}/files/{file_id}", params={"path": name}, headers={"Range": "pages=1-2"}
    )


@case("getFile", 404, drift="read")
async def file_unknown(target: Target) -> Reply:
    return await target.request("GET", f"{EXPORT}/files/{UNKNOWN_ID}")


@case("getFile", 404, drift="read")
async def file_unknown_path(target: Target) -> Reply:
    file_id, _ = await target.file()
    return await target.request("GET", f"{EXPORT}/files/{file_id}", params={"path": "no-such-file.parquet"})


@case("getFile", 416, drift="read")
async def file_range_past_the_end(target: Target) -> Reply:
    file_id, name = await target.file()
    return await target.request(
        "GET", f"{EXPORT}/files/{file_id}", params={"path": name}, headers={"Range": "bytes=999999999-"}
    )


@case("headFile", 200, drift="read")
async def file_head(target: Target) -> Reply:
    file_id, name = await target.file()
    reply = await target.request("HEAD", f"{EXPORT}/files/{file_id}", params={"path": name})
    assert int(reply.headers["Content-Length"]) > 0, reply
    return reply


@case("headFile", 400)
async def file_head_without_path(target: Target) -> Reply:
    file_id, _ = await emulator(target).file()
    return await target.request("HEAD", f"{EXPORT}/files/{file_id}")


@case("headFile", 404, drift="read")
async def file_head_unknown(target: Target) -> Reply:
    return await target.request("HEAD", f"{EXPORT}/files/{UNKNOWN_ID}", params={"path": "x.parquet"})


# -- the control plane (emulator only) --------------------------------------------------------------


def _control(operation_id: str, status: int, method: str, path: str, name: str = "", **kwargs: Any) -> None:
    async def run(target: Target) -> Reply:
        return await emulator(target).request(method, f"/_emulator{path}", **kwargs)

    run.__name__ = name or f"{method.lower()}_{path.strip('/').replace('/', '_')}"
    case(operation_id, status)(run)


_control("health", 200, "GET", "/health")
_control("reset", 200, "POST", "/reset")
_control("reset", 200, "POST", "/reset", "one_tenant", params={"org": "SOMEORG@AdobeOrg", "sandbox": "dev"})
_control("reset", 400, "POST", "/reset", params={"sandbox": "dev"})
_control("getClock", 200, "GET", "/clock")
_control("advanceClock", 200, "POST", "/clock/advance", json_body={"seconds": 90})
_control("advanceClock", 400, "POST", "/clock/advance", json_body={"seconds": -1})
_control("listScenarios", 200, "GET", "/scenarios")
_control("addScenario", 201, "POST", "/scenarios", data="name: contract\nsteps:\n  - status: NEW\n")
_control(
    "addScenario",
    201,
    "POST",
    "/scenarios",
    "as_json",
    json_body={"name": "contract-json", "steps": [{"status": "NEW"}]},
)
_control("addScenario", 400, "POST", "/scenarios", data="name: broken\nsteps: []\n")
_control("setDefaultScenario", 200, "PUT", "/scenarios/default", json_body={"name": "failure"})
_control("setDefaultScenario", 400, "PUT", "/scenarios/default", json_body={"name": "no-such-scenario"})
_control("queueNextScenario", 200, "POST", "/scenarios/next", json_body={"name": "failure", "count": 2})
_control("queueNextScenario", 400, "POST", "/scenarios/next", json_body={"name": "failure", "count": 0})
_control("listAllJobs", 200, "GET", "/jobs", params={"all": "true"})
_control("listAllJobs", 400, "GET", "/jobs")
_control("listAllJobs", 400, "GET", "/jobs", "all_neither_true_nor_false", params={"all": "yes", "org": "O"})
_control("forceJob", 400, "POST", "/jobs/1/force", json_body={"status": "DONE"})
_control("forceJob", 404, "POST", "/jobs/424242/force", json_body={"status": "FAILED"})
_control("listRequests", 200, "GET", "/requests", params={"method": "GET"})
_control("listRequests", 400, "GET", "/requests", params={"status": "abc"})
_control("requestsHar", 400, "GET", "/requests.har", params={"unmatched": "maybe"})
_control("clearRequests", 200, "DELETE", "/requests")
_control("openapi", 200, "GET", "/openapi.json")


@case("requestsHar", 200)
async def journal_as_har(target: Target) -> Reply:
    emu = emulator(target)
    await emu.finished_job()
    await emu.request("GET", "/data/core/ups/export/job")  # a near miss: its hint is the entry's comment
    return await emu.request("GET", "/_emulator/requests.har")


@case("listAllJobs", 200)
async def tenant_jobs(target: Target) -> Reply:
    emu = emulator(target)
    await emu.finished_job()
    await emu.create_job()
    return await emu.request("GET", "/_emulator/jobs", params={"org": emu.headers()["x-gw-ims-org-id"]})


@case("forceJob", 200)
async def job_forced(target: Target) -> Reply:
    emu = emulator(target)
    job = await emu.create_job(headers={"x-emulator-scenario": "stuck"})
    body = {"status": "FAILED", "errors": [{"code": "0090000009", "msg": "forced", "callStack": "contract"}]}
    return await emu.request("POST", f"/_emulator/jobs/{job['id']}/force", json_body=body)


@case("forceJob", 409)
async def finished_job_forced(target: Target) -> Reply:
    emu = emulator(target)
    job = await emu.finished_job()
    return await emu.request("POST", f"/_emulator/jobs/{job['id']}/force", json_body={"status": "FAILED"})


@case("listRequests", 200)
async def journal_with_entries(target: Target) -> Reply:
    emu = emulator(target)
    await emu.finished_job()
    await emu.request("GET", f"{JOBS}/{UNKNOWN_JOB}")
    return await emu.request("GET", "/_emulator/requests")


# -- generated from the document --------------------------------------------------------------------


def _concrete(path: str) -> str:
    return path.replace("{job_id}", UNKNOWN_JOB).replace("{", "").replace("}", "")


def _generated() -> None:
    for path, item in document()["paths"].items():
        for method, op in item.items():
            operation_id, statuses = op["operationId"], set(op["responses"])
            request_path = _concrete(path)
            has_body = "requestBody" in op
            if op["security"]:
                _gateway(operation_id, method.upper(), request_path, has_body)
            if "413" in statuses:
                _too_large(operation_id, method.upper(), request_path)
            if operation_id in FAULTS:
                for status in sorted({"429", "503"} & statuses):
                    _fault(operation_id, int(status))


def _gateway(operation_id: str, method: str, path: str, has_body: bool) -> None:
    """The gateway refuses before any service sees the request: safe against a real sandbox too."""
    body = "{}" if has_body else None
    refusals = (
        (401, "missing_token", {}, ("Authorization",)),
        (401, "not_a_bearer_token", {"Authorization": "Basic dXNlcjpwYXNz"}, ()),
        (403, "missing_api_key", {}, ("x-api-key",)),
        (400, "missing_org", {}, ("x-gw-ims-org-id",)),
    )
    for status, name, headers, drop in refusals:

        async def run(target: Target, headers: Any = headers, drop: Any = drop) -> Reply:
            return await target.request(method, path, data=body, headers=headers, drop=drop)

        run.__name__ = f"gateway_{name}"
        # A HEAD answer has no body to hold the gateway's error.
        case(operation_id, status, drift="read", schema=None if method == "HEAD" else "error.gateway")(run)


def _too_large(operation_id: str, method: str, path: str) -> None:
    # IMS reads a form body; other bodies are JSON.
    headers = {"Content-Type": FORM} if path.startswith("/ims/") else {}

    async def run(target: Target) -> Reply:
        return await emulator(target).request(method, path, data=TOO_LARGE, headers=headers)

    run.__name__ = "body_over_the_limit"
    case(operation_id, 413)(run)


def _fault(operation_id: str, status: int) -> None:
    """A scenario whose fault hits this operation once; the request then goes where a client's would."""

    async def run(target: Target) -> Reply:
        emu = emulator(target)
        name = f"fault-{operation_id}-{status}"
        respond: dict[str, Any] = {"status": status}
        if status == 429:
            respond["headers"] = {"Retry-After": "2"}
        fault = {"operation": FAULTS[operation_id], "times": 1, "respond": respond}
        await emu.control(
            "POST",
            "/scenarios",
            {
                "name": name,
                "steps": [{"status": "PROCESSING"}, {"status": "SUCCEEDED", "after": {"polls": 1}}],
                "faults": [fault],
            },
        )
        method, template, _ = emu.contract.operations[operation_id]
        scenario = {"x-emulator-scenario": name}
        if operation_id == "createExportJob":
            body = {
                "destination": {"datasetId": await emu.create_dataset()},
                "schema": {"name": "_xdm.context.profile"},
            }
            return await emu.request(method, template, json_body=body, headers=scenario)
        if operation_id.startswith("listExportJobs"):
            await emu.control("PUT", "/scenarios/default", {"name": name})
            return await emu.request(method, template)
        job = await emu.create_job(headers=scenario)
        if operation_id in ("getExportJob", "deleteExportJob"):
            return await emu.request(method, template.replace("{job_id}", str(job["id"])))
        job = await _poll_through_faults(emu, job["id"])
        batch_id = job["destination"]["batchId"]
        if operation_id == "listBatchFiles":
            return await emu.request(method, f"{EXPORT}/batches/{batch_id}/files")
        files = await emu.call("listBatchFiles", 200, f"{EXPORT}/batches/{batch_id}/files")
        file_id = files.json()["data"][0]["dataSetFileId"]
        name_of_file = (await emu.call("getFile", 200, f"{EXPORT}/files/{file_id}")).json()["data"][0]["name"]
        return await emu.request(method, f"{EXPORT}/files/{file_id}", params={"path": name_of_file})

    run.__name__ = "scenario_fault"
    case(operation_id, status)(run)


async def _poll_through_faults(emu: EmulatorTarget, job_id: int) -> dict[str, Any]:
    job: dict[str, Any] = {}
    while job.get("status") != "SUCCEEDED":
        job = await emu.poll(job_id)
    return job


_generated()

# The audience leg's and the dashboard's cases register themselves into CASES.
from tests.contract import audience_cases, ui_cases  # noqa: E402, F401
