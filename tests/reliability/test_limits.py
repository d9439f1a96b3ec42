"""Configurable caps with documented defaults: request body size, export jobs per tenant, journal length
and the exported-file cache. Past each, a clear 4xx or an eviction, never unbounded growth."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp.web import Application

from emulator.api.common import BACKEND
from emulator.options import (
    DEFAULT_FILE_CACHE_BYTES,
    DEFAULT_JOURNAL_LIMIT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_JOBS_PER_TENANT,
    DEFAULT_MAX_TENANT_BYTES,
    Options,
)
from tests.conftest import OTHER_ORG, START_MS, Aep, aep_headers, assert_matches
from tests.reliability.conftest import (
    Start,
    clean_env,
    finished_file,
    json_error,
    launch,
    message_of,
    request,
)

JOBS = "/data/core/ups/export/jobs"
BATCHES = "/data/foundation/catalog/batches"
EXPORT = "/data/foundation/export"
CAP = 3


def test_the_documented_defaults() -> None:
    options = Options()
    assert options.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1024 * 1024
    assert options.max_jobs_per_tenant == DEFAULT_MAX_JOBS_PER_TENANT == 100_000
    assert options.journal_limit == DEFAULT_JOURNAL_LIMIT == 10_000
    assert options.file_cache_bytes == DEFAULT_FILE_CACHE_BYTES == 8 * 1024 * 1024
    assert options.max_tenant_bytes == DEFAULT_MAX_TENANT_BYTES == 64 * 1024 * 1024


class TestJobsPerTenant:
    @pytest.fixture
    def options(self) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, max_jobs_per_tenant=CAP)

    async def live_jobs(self, aep: Aep, count: int) -> list[int]:
        dataset_id = await aep.create_dataset()
        jobs = [
            await aep.create_job(dataset_id, headers={"x-emulator-scenario": "stuck"}) for _ in range(count)
        ]
        return [job["id"] for job in jobs]

    async def test_past_the_cap_with_every_job_live_a_create_is_429(self, aep: Aep) -> None:
        await self.live_jobs(aep, CAP)
        dataset_id = await aep.create_dataset()
        body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
        refused = await aep.client.post(JOBS, json=body, headers=aep.headers())
        message = message_of(await json_error(refused, 429))
        assert "--max-jobs-per-tenant" in message and str(CAP) in message
        listed = await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
        assert len(listed["records"]) == CAP
        # The cap is per tenant: another one is not affected.
        other = Aep(aep.client, org=OTHER_ORG)
        await other.create_job(await other.create_dataset())

    async def test_the_oldest_finished_job_makes_room_with_its_batches(self, aep: Aep) -> None:
        first, second, third = await self.live_jobs(aep, CAP)
        cancelled = await aep.call(
            "DELETE", f"{JOBS}/{second}", status=200, schema="export-job.cancel.response"
        )
        assert cancelled["message"] == "Export job has been marked for cancelling"
        batch_of_second = (await aep.get_job(second))["destination"]["batchId"]
        newest = await aep.create_job(await aep.create_dataset())
        # The cancelled job was the oldest finished one: it is gone, its batch too.
        await json_error(await aep.client.get(f"{JOBS}/{second}", headers=aep.headers()), 404)
        await json_error(await aep.client.get(f"{BATCHES}/{batch_of_second}", headers=aep.headers()), 404)
        listed = await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
        assert [r["id"] for r in listed["records"]] == [newest["id"], third, first]

    async def test_deleted_jobs_whose_data_stays_count_and_go_first(self, aep: Aep) -> None:
        dataset_id = await aep.create_dataset()
        finished = await aep.create_job(dataset_id)
        await aep.get_job(finished["id"])
        assert (await aep.get_job(finished["id"]))["status"] == "SUCCEEDED"
        await aep.call("DELETE", f"{JOBS}/{finished['id']}", status=200, schema="export-job.cancel.response")
        batch = finished["destination"]["batchId"]
        await aep.call("GET", f"{BATCHES}/{batch}", status=200, schema="batch.map.response")  # data stays
        await self.live_jobs(aep, CAP - 1)
        await aep.create_job(dataset_id, headers={"x-emulator-scenario": "stuck"})
        # Three live jobs plus the deleted one's data was one too many: the data went.
        await json_error(await aep.client.get(f"{BATCHES}/{batch}", headers=aep.headers()), 404)
        files = await aep.client.get(f"{EXPORT}/batches/{batch}/files", headers=aep.headers())
        await json_error(files, 404)


class TestTenantBytes:
    """Issue 12, finding 6: 300 datasets of 1 MB each grew the process by 308 MB; now a tenant's stored
    requests (dataset and job bodies) are bounded by --max-tenant-bytes."""

    @pytest.fixture
    def options(self) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, max_tenant_bytes=5000, max_jobs_per_tenant=2)

    async def test_past_the_budget_a_create_is_413_naming_it(self, aep: Aep) -> None:
        for _ in range(4):
            await aep.create_dataset(description="d" * 1000)
        body = {"name": "one too many", "description": "d" * 1000}
        refused = await aep.client.post("/data/foundation/catalog/dataSets", json=body, headers=aep.headers())
        message = message_of(await json_error(refused, 413))
        assert "--max-tenant-bytes" in message and "5000" in message
        job = {"destination": {"datasetId": "0" * 24}, "schema": {"name": "_xdm.context.profile"}}
        dataset_id = (
            await aep.call("GET", "/data/foundation/catalog/dataSets", status=200, schema=None)
        ).popitem()[0]
        job["destination"]["datasetId"] = dataset_id
        job["fields"] = "x" * 1500
        refused = await aep.client.post(JOBS, json=job, headers=aep.headers())
        assert "--max-tenant-bytes" in message_of(await json_error(refused, 413))
        # Another tenant has its own budget; a reset of this one gives it back.
        other = Aep(aep.client, org=OTHER_ORG)
        await other.create_dataset(description="d" * 1000)
        assert (await aep.client.post("/_emulator/reset", params={"org": aep.org})).status == 200
        await aep.create_dataset(description="d" * 1000)

    async def test_evicted_jobs_give_their_bytes_back(self, aep: Aep) -> None:
        dataset_id = await aep.create_dataset()
        for _ in range(30):  # 30 jobs of about 1 KB, two kept at a time: never past 5000 bytes
            job = await aep.create_job(dataset_id, fields="x" * 1000)
            await aep.get_job(job["id"])
            assert (await aep.get_job(job["id"]))["status"] == "SUCCEEDED"


class TestStrayTenants:
    async def test_reads_and_refused_creates_of_unknown_orgs_keep_no_state(
        self, aep: Aep, app: Application
    ) -> None:
        tenants = app[BACKEND].store.tenants
        before = len(tenants)
        for number in range(20):
            stray = Aep(aep.client, org=f"STRAY{number}@AdobeOrg")
            await stray.call("GET", JOBS, status=200, schema="export-job.list.response")
            await json_error(await aep.client.get(f"{JOBS}/1", headers=stray.headers()), 404)
            body = {"destination": {"datasetId": "0" * 24}, "schema": {"name": "_xdm.context.profile"}}
            await json_error(await aep.client.post(JOBS, json=body, headers=stray.headers()), 400)
        assert len(tenants) == before


class TestJournalLimit:
    @pytest.fixture
    def options(self) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, journal_limit=4)

    async def test_the_oldest_entries_are_evicted_first(self, aep: Aep) -> None:
        for number in range(10):
            response = await aep.client.get(f"{JOBS}/{number}", headers=aep.headers())
            await json_error(response, 404)
        journal = await aep.client.get("/_emulator/requests")
        entries = (await journal.json())["requests"]
        assert_matches("control.requests.response", {"requests": entries})
        assert [e["path"] for e in entries] == [f"{JOBS}/{n}" for n in range(6, 10)]

    async def test_requests_refused_for_their_size_are_journaled_without_their_bulk(self, aep: Aep) -> None:
        await json_error(await aep.client.get(f"{JOBS}?pad={'a' * 9000}", headers=aep.headers()), 414)
        await json_error(await aep.client.get(JOBS, headers={**aep.headers(), "x-pad": "b" * 9000}), 431)
        journal = await (await aep.client.get("/_emulator/requests")).json()
        assert_matches("control.requests.response", journal)
        assert [(e["status"], e["query"], e["headers"]) for e in journal["requests"]] == [
            (414, {}, {}),
            (431, {}, {}),
        ]


class TestFileCache:
    @pytest.fixture
    def options(self) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, file_cache_bytes=0)

    async def test_without_a_cache_every_fetch_renders_the_file_again(
        self, aep: Aep, app: Application
    ) -> None:
        file_id, name = await finished_file(aep)
        exports = app[BACKEND].exports
        before = exports.generated_files
        bodies = []
        for _ in range(3):
            response = await aep.client.get(
                f"{EXPORT}/files/{file_id}", params={"path": name}, headers=aep.headers()
            )
            assert response.status == 200
            bodies.append(await response.read())
        assert exports.generated_files == before + 3
        assert bodies[0] == bodies[1] == bodies[2]  # deterministic, cached or not


class TestBodyLimit:
    @pytest.fixture
    def options(self) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, max_body_bytes=2000)

    async def test_the_configured_limit_is_the_one_enforced_and_named(self, aep: Aep) -> None:
        body = json.dumps({"name": "x", "description": "d" * 2000}).encode()
        response = await aep.client.post(
            "/data/foundation/catalog/dataSets", data=body, headers=aep.headers()
        )
        assert "2000" in message_of(await json_error(response, 413))
        await aep.create_dataset(description="d" * 1000)


# -- the command line ----------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["flags", "environment"])
def test_serve_takes_every_limit_from_flags_or_environment(serve: Start, via: str) -> None:
    limits = {
        "max-body-bytes": "300",
        "max-jobs-per-tenant": "1",
        "journal-limit": "2",
        "file-cache-bytes": "0",
    }
    if via == "flags":
        server = serve("--clock", "manual", *[arg for k, v in limits.items() for arg in (f"--{k}", v)])
    else:
        variables = {f"AEP_EMULATOR_{k.upper().replace('-', '_')}": v for k, v in limits.items()}
        server = serve("--clock", "manual", env=clean_env(**variables))
    headers = aep_headers()
    status, error = request(
        server.url, "POST", "/data/foundation/catalog/dataSets", b"{" + b" " * 300 + b"}", **headers
    )
    assert (status, error["status"]) == (413, 413)
    assert_matches("error.problem", error)
    status, created = request(
        server.url, "POST", "/data/foundation/catalog/dataSets", {"name": "x"}, **headers
    )
    assert status == 201
    dataset_id = created[0].rsplit("/", 1)[1]
    job = {"destination": {"datasetId": dataset_id}, "schema": {"name": "s"}}
    stuck = {**headers, "x-emulator-scenario": "stuck"}
    assert request(server.url, "POST", JOBS, job, **stuck)[0] == 200
    status, error = request(server.url, "POST", JOBS, job, **stuck)
    assert status == 429
    assert_matches("error.ups", error)
    status, journal = request(server.url, "GET", "/_emulator/requests")
    assert status == 200
    assert_matches("control.requests.response", journal)
    assert [e["status"] for e in journal["requests"]] == [200, 429]
    assert server.stop() == 0


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--max-body-bytes", "0"], "--max-body-bytes"),
        (["--max-jobs-per-tenant", "many"], "--max-jobs-per-tenant"),
        (["--journal-limit", "-1"], "--journal-limit"),
        (["--file-cache-bytes", "1.5"], "--file-cache-bytes"),
        (["--save-interval", "0"], "--save-interval"),
        (["--max-tenant-bytes", "0"], "--max-tenant-bytes"),
    ],
)
def test_bad_limits_exit_2_with_one_line(args: list[str], named: str) -> None:
    served = launch(*args)
    assert not served.url
    _, stderr = served.process.communicate(timeout=60)
    lines = stderr.decode().splitlines()
    assert served.process.returncode == 2
    assert len(lines) == 1 and named in lines[0], lines


def test_a_bad_limit_in_the_environment_exits_2_naming_it() -> None:
    served = launch(env=clean_env(AEP_EMULATOR_MAX_JOBS_PER_TENANT="lots"))
    assert not served.url
    _, stderr = served.process.communicate(timeout=60)
    assert served.process.returncode == 2
    assert "lots" in stderr.decode()


class TestLenientLog:
    """Issue 12, finding 11: lenient validation logged a line per dropped value (24k for one request)."""

    @pytest.fixture
    def options(self) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, validation="lenient")

    async def test_one_request_logs_one_line_however_many_values_it_drops(
        self, aep: Aep, caplog: pytest.LogCaptureFixture
    ) -> None:
        tags = {f"tag{number}": number for number in range(2000)}  # each should be a list of strings
        with caplog.at_level(logging.WARNING, logger="emulator.validation"):
            await aep.create_dataset(tags=tags)
        lines = [r.getMessage() for r in caplog.records if r.name == "emulator.validation"]
        assert len(lines) == 1, len(lines)
        assert "dropped 2000 value(s)" in lines[0] and "and 1990 more" in lines[0]
        assert len(lines[0]) < 2000
