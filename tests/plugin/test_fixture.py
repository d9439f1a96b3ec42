"""The pytest plugin's in-process fixtures, exercised the way users meet them: inner pytest runs (pytester).

Inner tests call the emulator with `requests` and check every JSON answer against its schema with `check`.
"""

from __future__ import annotations

import pytest

# Inner runs are in-process and pytester drops the modules they import when they end: import the
# client libraries here once, so every inner run shares one copy (requests breaks when re-imported).
import requests  # noqa: F401

import emulator.app  # noqa: F401  (and the emulator itself, which is slow to import every time)

pytest_plugins = ["pytester"]

# Plugins of the outer environment that inner runs do not need (hypothesis imports itself anew in each).
INI = """
[pytest]
addopts = -p no:cacheprovider -p no:hypothesispytest
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

CONFTEST = """
import requests
from emulator.validation import bundled_schemas

DATASETS = "/data/foundation/catalog/dataSets"
JOBS = "/data/core/ups/export/jobs"


def check(schema, body):
    errors = bundled_schemas().errors(schema, body)
    assert not errors, (schema, errors)
    return body


def call(method, url, status, schema, **kwargs):
    response = requests.request(method, url, timeout=30, **kwargs)
    assert response.status_code == status, response.text
    return check(schema, response.json())


def create_dataset(emulator, **headers):
    created = call("POST", emulator.url + DATASETS, 201, "dataset.create.response",
                   json={"name": "target"}, headers=emulator.headers(**headers))
    return created[0].rsplit("/", 1)[1]


def create_job(emulator, dataset_id, **headers):
    body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
    return call("POST", emulator.url + JOBS, 200, "export-job.response", json=body,
                headers=emulator.headers(**headers))


def get_job(emulator, job_id):
    return call("GET", f"{emulator.url}{JOBS}/{job_id}", 200, "export-job.response",
                headers=emulator.headers())
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    return pytester


def test_the_fixture_serves_aep_and_ims_on_one_local_port(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import re
        from conftest import call, check, create_dataset

        def test_urls_and_headers(aep_emulator):
            assert re.fullmatch(r"http://127\\.0\\.0\\.1:\\d+", aep_emulator.url)
            assert aep_emulator.ims_url == aep_emulator.url
            assert aep_emulator.token_url == aep_emulator.url + "/ims/token/v3"
            headers = aep_emulator.headers()
            assert headers["Authorization"].startswith("Bearer emulator-")
            assert headers["x-api-key"] == aep_emulator.client_id
            assert headers["x-gw-ims-org-id"] == "EMULATOR@AdobeOrg" == aep_emulator.org
            assert headers["x-sandbox-name"] == "prod"
            assert headers["Content-Type"] == "application/json"
            other = aep_emulator.headers(org="ACME@AdobeOrg", sandbox="dev")
            assert (other["x-gw-ims-org-id"], other["x-sandbox-name"]) == ("ACME@AdobeOrg", "dev")
            assert create_dataset(aep_emulator)

        def test_a_user_can_mint_tokens_like_aepp_does(aep_emulator):
            form = {"grant_type": "client_credentials", "client_id": "mine", "client_secret": "s",
                    "scope": "openid"}
            token = call("POST", aep_emulator.token_url, 200, "ims.token.response", data=form)
            assert token["expires_in"] == 86399
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_every_test_starts_from_a_fresh_emulator(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from conftest import DATASETS, call, check, create_dataset, create_job

        @pytest.mark.parametrize("round", range(3))
        def test_fresh(aep_emulator, round):
            assert (aep_emulator.org, aep_emulator.client_id) == ("EMULATOR@AdobeOrg", "aep-emulator-client")
            assert aep_emulator.jobs() == []
            assert aep_emulator.requests == []
            listed = call("GET", aep_emulator.url + DATASETS, 200, "dataset.map.response",
                          headers=aep_emulator.headers())
            assert listed == {}
            now = aep_emulator.clock.now()
            assert START.setdefault("now", now) == now
            job = create_job(aep_emulator, create_dataset(aep_emulator))
            assert job["id"] == 1
            aep_emulator.use_scenario("failure")
            aep_emulator.next_job_scenario("stuck", count=2)
            aep_emulator.add_scenario({"name": f"extra-{round}", "steps": [{"status": "NEW"}]})
            aep_emulator.clock.advance(3600)
            aep_emulator.org, aep_emulator.client_id = "CHANGED@AdobeOrg", "changed-client"
            assert create_dataset(aep_emulator)

        START = {}
        """
    )
    inner.runpytest().assert_outcomes(passed=3)


def test_the_clock_is_manual_and_advances_on_request(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        from conftest import create_dataset, create_job, get_job

        def test_clock(aep_emulator):
            assert aep_emulator.clock.mode == "manual"
            start = aep_emulator.clock.now()
            assert aep_emulator.clock.now() == start
            assert aep_emulator.clock.advance(90) == start + 90_000
            assert aep_emulator.clock.now() == start + 90_000

        def test_slow_job_finishes_on_emulator_time(aep_emulator):
            aep_emulator.use_scenario("slow")
            job = create_job(aep_emulator, create_dataset(aep_emulator))
            assert get_job(aep_emulator, job["id"])["status"] == "NEW"
            aep_emulator.clock.advance(16 * 60)
            done = get_job(aep_emulator, job["id"])
            assert done["status"] == "SUCCEEDED"
            assert done["updateTime"] - done["creationTime"] == 16 * 60 * 1000
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_scenario_controls(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from emulator.pytest_plugin import AepEmulatorError
        from conftest import check, create_dataset, create_job, get_job

        YAML = '''
        name: never-ends
        description: stays NEW
        steps:
          - status: NEW
        '''

        @pytest.mark.aep_scenario("failure")
        def test_marker_sets_the_default(aep_emulator):
            job = create_job(aep_emulator, create_dataset(aep_emulator))
            get_job(aep_emulator, job["id"])
            assert get_job(aep_emulator, job["id"])["status"] == "FAILED"

        def test_marker_lasts_one_test(aep_emulator):
            job = create_job(aep_emulator, create_dataset(aep_emulator))
            get_job(aep_emulator, job["id"])
            assert get_job(aep_emulator, job["id"])["status"] == "SUCCEEDED"

        def test_next_job_scenario_then_default(aep_emulator):
            dataset = create_dataset(aep_emulator)
            aep_emulator.next_job_scenario("stuck")
            stuck, normal = create_job(aep_emulator, dataset), create_job(aep_emulator, dataset)
            listed = check("control.jobs.response", {"jobs": aep_emulator.jobs()})["jobs"]
            jobs = {j["job"]["id"]: j for j in listed}
            assert jobs[stuck["id"]]["scenario"] == "stuck"
            assert jobs[normal["id"]]["scenario"] == "success"

        @pytest.mark.parametrize("form", ["yaml", "dict", "path"])
        def test_add_scenario(aep_emulator, form, tmp_path):
            if form == "yaml":
                scenario = YAML
            elif form == "dict":
                scenario = {"name": "never-ends", "description": "stays NEW", "steps": [{"status": "NEW"}]}
            else:
                scenario = tmp_path / "never-ends.yaml"
                scenario.write_text(YAML)
            summary = check("control.scenario-added.response", aep_emulator.add_scenario(scenario))
            assert summary["name"] == "never-ends"
            aep_emulator.use_scenario("never-ends")
            job = create_job(aep_emulator, create_dataset(aep_emulator))
            aep_emulator.clock.advance(3600)
            assert get_job(aep_emulator, job["id"])["status"] == "NEW"

        def test_refusals_carry_the_emulators_reason(aep_emulator):
            with pytest.raises(AepEmulatorError, match="Unknown scenario 'nope'"):
                aep_emulator.use_scenario("nope")
            with pytest.raises(AepEmulatorError, match="answered 400"):
                aep_emulator.add_scenario("steps: 3")
        """
    )
    inner.runpytest().assert_outcomes(passed=7)


def test_jobs_journal_and_force(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        from conftest import check, create_dataset, create_job, get_job

        def test_jobs_by_tenant(aep_emulator):
            create_job(aep_emulator, create_dataset(aep_emulator))
            create_job(aep_emulator, create_dataset(aep_emulator, org="ACME@AdobeOrg"), org="ACME@AdobeOrg")
            everything = check("control.jobs.response", {"jobs": aep_emulator.jobs()})["jobs"]
            assert {j["tenant"]["org"] for j in everything} == {"EMULATOR@AdobeOrg", "ACME@AdobeOrg"}
            acme = check("control.jobs.response", {"jobs": aep_emulator.jobs(org="ACME@AdobeOrg")})["jobs"]
            assert [j["tenant"] for j in acme] == [{"org": "ACME@AdobeOrg", "sandbox": "prod"}]

        def test_journal_holds_what_the_test_sent(aep_emulator):
            job = create_job(aep_emulator, create_dataset(aep_emulator))
            get_job(aep_emulator, job["id"])
            entries = check("control.requests.response", {"requests": aep_emulator.requests})["requests"]
            sent = [(e["method"], e["status"]) for e in entries]
            assert sent == [("POST", 201), ("POST", 200), ("GET", 200)]
            gets = aep_emulator.journal(method="GET")
            assert [e["path"] for e in gets] == [f"/data/core/ups/export/jobs/{job['id']}"]

        def test_force_job(aep_emulator):
            aep_emulator.use_scenario("stuck")
            job = create_job(aep_emulator, create_dataset(aep_emulator))
            forced = aep_emulator.force_job(job["id"], "FAILED", [{"code": "42", "msg": "forced"}])
            check("control.job.response", forced)
            failed = get_job(aep_emulator, job["id"])
            assert failed["status"] == "FAILED"
            assert failed["errors"][0]["msg"] == "forced"
        """
    )
    inner.runpytest().assert_outcomes(passed=3)


def test_reset_within_a_test(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        from conftest import DATASETS, call, create_dataset

        def test_reset(aep_emulator):
            start = aep_emulator.clock.now()
            create_dataset(aep_emulator)
            aep_emulator.clock.advance(10)
            aep_emulator.use_scenario("stuck")
            aep_emulator.reset()
            assert aep_emulator.clock.now() == start
            assert aep_emulator.requests == []
            listed = call("GET", aep_emulator.url + DATASETS, 200, "dataset.map.response",
                          headers=aep_emulator.headers())
            assert listed == {}
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_options_can_be_overridden_for_strict_auth(inner: pytest.Pytester) -> None:
    inner.makeconftest(
        CONFTEST
        + """
import pytest
from emulator.options import Options

@pytest.fixture(scope="session")
def aep_emulator_options():
    return Options(port=0, clock="manual", auth="strict")
"""
    )
    inner.makepyfile(
        """
        from conftest import DATASETS, call, create_dataset

        def test_strict(aep_emulator):
            create_dataset(aep_emulator)
            bogus = {**aep_emulator.headers(), "Authorization": "Bearer made-up"}
            refused = call("GET", aep_emulator.url + DATASETS, 401, "error.gateway", headers=bogus)
            assert refused["error_code"] == "401013"

        def test_tokens_are_reminted_when_the_clock_passes_their_expiry(aep_emulator):
            first = aep_emulator.headers()
            aep_emulator.clock.advance(2 * 86400)
            call("GET", aep_emulator.url + DATASETS, 401, "error.gateway", headers=first)
            second = aep_emulator.headers()
            assert second["Authorization"] != first["Authorization"]
            call("GET", aep_emulator.url + DATASETS, 200, "dataset.map.response", headers=second)

        def test_tokens_from_before_a_reset_are_not_reused(aep_emulator):
            first = aep_emulator.headers()
            aep_emulator.reset()
            call("GET", aep_emulator.url + DATASETS, 401, "error.gateway", headers=first)
            create_dataset(aep_emulator)
        """
    )
    inner.runpytest().assert_outcomes(passed=3)


def test_strict_auth_with_a_credentials_file(inner: pytest.Pytester) -> None:
    inner.makefile(".yaml", credentials="clients:\n  my-client: {secret: my-secret, orgs: [MINE@AdobeOrg]}\n")
    inner.makeconftest(
        CONFTEST
        + """
import pytest
from pathlib import Path
from emulator.options import Options

@pytest.fixture(scope="session")
def aep_emulator_options():
    return Options(port=0, clock="manual", auth="strict", credentials_file=Path("credentials.yaml").resolve())
"""
    )
    inner.makepyfile(
        """
        import pytest
        from emulator.pytest_plugin import AepEmulatorError
        from conftest import DATASETS, call, create_dataset

        MINE = {"org": "MINE@AdobeOrg", "client_id": "my-client", "client_secret": "my-secret"}

        def test_a_listed_client(aep_emulator):
            create_dataset(aep_emulator, **MINE)
            other_org = aep_emulator.headers(**{**MINE, "org": "OTHER@AdobeOrg"})
            refused = call("GET", aep_emulator.url + DATASETS, 403, "error.gateway", headers=other_org)
            assert refused["error_code"] == "403025"

        def test_the_default_client_is_not_listed(aep_emulator):
            with pytest.raises(AepEmulatorError, match="invalid_client"):
                aep_emulator.headers()
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_aep_emulator_app_for_aiohttp_client(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest
        from conftest import check

        HEADERS = {"Authorization": "Bearer t", "x-api-key": "k", "x-gw-ims-org-id": "O@AdobeOrg"}
        JOB = {"destination": {"datasetId": None}, "schema": {"name": "_xdm.context.profile"}}

        async def run_job(client):
            created = await client.post(
                "/data/foundation/catalog/dataSets", json={"name": "d"}, headers=HEADERS)
            dataset = check("dataset.create.response", await created.json())[0].rsplit("/", 1)[1]
            body = {**JOB, "destination": {"datasetId": dataset}}
            job = check("export-job.response", await (await client.post(
                "/data/core/ups/export/jobs", json=body, headers=HEADERS)).json())
            for _ in range(2):
                polled = await client.get(f"/data/core/ups/export/jobs/{job['id']}", headers=HEADERS)
                status = check("export-job.response", await polled.json())["status"]
            return job["id"], status

        @pytest.mark.aep_scenario("failure")
        async def test_marked(aiohttp_client, aep_emulator_app):
            client = await aiohttp_client(aep_emulator_app)
            assert await run_job(client) == (1, "FAILED")

        async def test_fresh_and_default(aiohttp_client, aep_emulator_app):
            client = await aiohttp_client(aep_emulator_app)
            assert await run_job(client) == (1, "SUCCEEDED")
            clock = check("control.clock.response", await (await client.get("/_emulator/clock")).json())
            assert clock["mode"] == "manual"
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


def test_async_tests_can_use_the_threaded_server(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import aiohttp
        from conftest import check

        async def test_async_client(aep_emulator):
            async with aiohttp.ClientSession(aep_emulator.url) as session:
                created = await session.post("/data/foundation/catalog/dataSets", json={"name": "d"},
                                             headers=aep_emulator.headers())
                assert created.status == 201
                check("dataset.create.response", await created.json())
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_a_marker_without_a_name_is_a_usage_error(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.aep_scenario()
        def test_unnamed(aep_emulator):
            pass
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*aep_scenario needs a scenario name*"])


def test_marker_and_options_are_registered(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.aep_scenario("stuck")
        def test_marked():
            pass
        """
    )
    inner.runpytest("--strict-markers").assert_outcomes(passed=1)
    inner.runpytest("--markers").stdout.fnmatch_lines(["@pytest.mark.aep_scenario(name):*"])
    inner.runpytest("--help").stdout.fnmatch_lines(
        ["*--aep-emulator-url=URL*", "*--aep-emulator-ims-url=URL*"]
    )
