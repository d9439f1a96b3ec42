"""--aep-emulator-har DIR and the fixture's assertions, run as a user's project runs them (pytester)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.validation import bundled_schemas

pytest_plugins = ["pytester"]

PROJECT_TESTS = """
import urllib.error
import urllib.request

JOBS = "/data/core/ups/export/jobs"


def get(emulator, path):
    request = urllib.request.Request(emulator.url + path, headers=emulator.headers())
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_passes(aep_emulator):
    assert get(aep_emulator, JOBS + "?from=passing") == 200


def test_polls_three_times(aep_emulator):
    get(aep_emulator, "/data/foundation/export/jobs/1")
    get(aep_emulator, JOBS + "/1")
    aep_emulator.assert_requested("GET", JOBS + "/*", times=3)


def test_passes_again(aep_emulator):
    assert get(aep_emulator, JOBS + "?from=another") == 200


async def test_in_process(aiohttp_client, aep_emulator_app):
    client = await aiohttp_client(aep_emulator_app)
    response = await client.get(JOBS + "/", headers={"Authorization": "Bearer t", "x-api-key": "k"})
    assert response.status == 200
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_project=PROJECT_TESTS)
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider -p no:xdist\nasyncio_mode = auto\n")
    return pytester


def har_schema_errors(document: object) -> list[str]:
    return bundled_schemas().errors("control.requests-har.response", document)


def test_each_failed_test_gets_a_har_file_of_its_own_requests(project: pytest.Pytester) -> None:
    folder = project.path / "har"
    result = project.runpytest_subprocess("--aep-emulator-har", str(folder))
    result.assert_outcomes(passed=2, failed=2)
    files = sorted(path.name for path in folder.iterdir())
    assert files == ["test_project.py_test_in_process.har", "test_project.py_test_polls_three_times.har"]

    polled = json.loads((folder / files[1]).read_text())
    assert har_schema_errors(polled) == []
    requests = [
        (e["request"]["method"], e["request"]["url"].split("/", 3)[3]) for e in polled["log"]["entries"]
    ]
    # The failing test's requests only: not the passing tests' (before and after it), not token requests.
    assert requests == [("GET", "data/foundation/export/jobs/1"), ("GET", "data/core/ups/export/jobs/1")]
    first = polled["log"]["entries"][0]
    assert first["response"]["status"] == 404
    assert first["comment"].startswith("no route for GET /data/foundation/export/jobs/1; closest: ")

    in_process = json.loads((folder / files[0]).read_text())
    assert har_schema_errors(in_process) == []
    (entry,) = in_process["log"]["entries"]
    assert entry["response"]["status"] == 400
    assert entry["comment"].startswith("GET /data/core/ups/export/jobs/: header x-gw-ims-org-id is missing")


def test_the_report_lists_the_last_requests_and_the_assertion_says_what_was_sent(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest_subprocess("--aep-emulator-har", str(project.path / "har"))
    out = result.stdout.str()
    assert (
        "AssertionError: expected GET /data/core/ups/export/jobs/* to be requested 3 times, but it was "
        "requested once." in out
    )
    result.stdout.fnmatch_lines(
        [
            "*- aep-emulator requests -*",
            "Requests the emulator saw (2):",
            "  GET /data/foundation/export/jobs/1 -> 404",
            "      hint: no route for GET /data/foundation/export/jobs/1; closest: "
            "GET /data/core/ups/export/jobs/{job_id} "
            "('/data/foundation/export' should be '/data/core/ups/export')",
            "  GET /data/core/ups/export/jobs/1 -> 404",
            f"HAR file: {project.path / 'har'}/test_project.py_test_polls_three_times.har",
        ]
    )
    assert "from=passing" not in out and "from=another" not in out


def test_without_the_option_nothing_is_written(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess()
    result.assert_outcomes(passed=2, failed=2)
    assert "aep-emulator requests" not in result.stdout.str()
    assert not (project.path / "har").exists()


def test_assertion_helpers(aep_emulator: object) -> None:
    from emulator.testing import AepEmulator

    assert isinstance(aep_emulator, AepEmulator)
    aep_emulator.assert_not_requested("GET", "/data/**")
    with pytest.raises(
        AssertionError,
        match=r"^expected POST /data/\*\* to be requested at least once, but it "
        r"was requested 0 times\.\nNo requests reached the emulator\.$",
    ):
        aep_emulator.assert_requested("POST", "/data/**")
    assert aep_emulator.near_misses() == []
    assert aep_emulator.requested("GET") == 0
    assert Path  # keeps the import for type checkers
