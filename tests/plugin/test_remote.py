"""The plugin against a server it did not start (`--aep-emulator-url`), under pytest-xdist, and its cost
to test runs that do not use it."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# Shared with the inner in-process runs (see test_fixture.py).
import requests  # noqa: F401

import emulator.app  # noqa: F401

pytest_plugins = ["pytester"]

INI = """
[pytest]
addopts = -p no:cacheprovider -p no:hypothesispytest
asyncio_default_fixture_loop_scope = function
"""

FRESH_TESTS = """
import json, os
import pytest
import requests
from emulator.validation import bundled_schemas

DATASETS = "/data/foundation/catalog/dataSets"


def check(schema, body):
    assert not bundled_schemas().errors(schema, body)
    return body


@pytest.mark.parametrize("round", range(4))
def test_fresh(aep_emulator, round):
    headers = aep_emulator.headers()
    created = requests.post(aep_emulator.url + DATASETS, json={"name": "d"}, headers=headers, timeout=30)
    check("dataset.create.response", created.json())
    listed = requests.get(aep_emulator.url + DATASETS, headers=headers, timeout=30).json()
    assert len(check("dataset.map.response", listed)) == 1
    assert aep_emulator.clock.mode == "manual"
    aep_emulator.clock.advance(60)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.environ["URLS_FILE"], "a") as out:
        out.write(json.dumps([worker, aep_emulator.url]) + "\\n")
"""


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("aep-emulator")
    return [str(script)] if script.exists() else [sys.executable, "-m", "emulator"]


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[str]:
    """`aep-emulator serve --port 0 --clock manual`, as a user would start it; yields its URL."""
    yield from _serve("--port", "0", "--clock", "manual")


def _serve(*args: str) -> Iterator[str]:
    process = subprocess.Popen(
        [*_cli(), "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        assert line.startswith("aep-emulator listening on "), f"{line!r} {process.stderr.read()}"
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        assert process.wait(30) == 0


@pytest.fixture
def inner(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeini(INI)
    monkeypatch.setenv("URLS_FILE", str(tmp_path / "urls.jsonl"))
    return pytester


def urls_seen(tmp_path: Path) -> list[tuple[str, str]]:
    lines = (tmp_path / "urls.jsonl").read_text().splitlines()
    return [tuple(json.loads(line)) for line in lines]  # type: ignore[misc]


def test_the_same_tests_run_against_a_running_emulator(
    inner: pytest.Pytester, running_emulator: str, tmp_path: Path
) -> None:
    inner.makepyfile(FRESH_TESTS)
    inner.runpytest(f"--aep-emulator-url={running_emulator}/").assert_outcomes(passed=4)
    assert {url for _, url in urls_seen(tmp_path)} == {running_emulator}


def test_xdist_workers_may_not_share_a_running_emulator(
    inner: pytest.Pytester, running_emulator: str
) -> None:
    """One usage error at startup, not one error per test."""
    inner.makepyfile("def test_a(aep_emulator):\n    pass\n\ndef test_b(aep_emulator):\n    pass\n")
    result = inner.runpytest_subprocess("-n", "2", f"--aep-emulator-url={running_emulator}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [
        "ERROR: --aep-emulator-url cannot be shared by 2 pytest-xdist workers; run with -n0, or leave the "
        "option out so that each worker starts its own emulator"
    ]
    assert "test_a" not in result.stdout.str()


def test_one_xdist_worker_may_use_a_running_emulator(
    inner: pytest.Pytester, running_emulator: str, tmp_path: Path
) -> None:
    inner.makepyfile(FRESH_TESTS)
    inner.runpytest_subprocess("-n", "1", f"--aep-emulator-url={running_emulator}").assert_outcomes(passed=4)
    assert {url for _, url in urls_seen(tmp_path)} == {running_emulator}


def test_each_xdist_worker_gets_its_own_server(inner: pytest.Pytester, tmp_path: Path) -> None:
    inner.makepyfile(FRESH_TESTS)
    inner.runpytest_subprocess("-n", "2").assert_outcomes(passed=4)
    seen = urls_seen(tmp_path)
    workers = {worker for worker, _ in seen}
    assert workers == {"gw0", "gw1"}
    # One server (so one port) per worker, never shared.
    assert len({url for _, url in seen}) == 2
    for worker in workers:
        assert len({url for w, url in seen if w == worker}) == 1


class _NotAnEmulator(BaseHTTPRequestHandler):
    """An AEP-compatible base URL without the emulator's control plane: 404 for everything."""

    def do_GET(self) -> None:
        body = b'{"title": "NotFoundError"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def not_an_emulator() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotAnEmulator)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_without_a_control_plane_tests_that_need_it_are_skipped(
    inner: pytest.Pytester, not_an_emulator: str
) -> None:
    inner.makepyfile(
        f"""
        import pytest

        def test_plain(aep_emulator):
            assert aep_emulator.url == "{not_an_emulator}"
            assert not aep_emulator.has_control_plane

        def test_needs_the_clock(aep_emulator):
            aep_emulator.clock.advance(1)

        @pytest.fixture
        def failing_scenario(aep_emulator):
            aep_emulator.use_scenario("failure")

        def test_set_up_with_the_control_plane(failing_scenario):
            pass
        """
    )
    result = inner.runpytest(f"--aep-emulator-url={not_an_emulator}", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*has no emulator control plane (/_emulator)*"])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:1", "ERROR: cannot reach --aep-emulator-url http://127.0.0.1:1: *refused*"),
        ("ftp://x", "ERROR: --aep-emulator-url: not an http(s) URL: 'ftp://x'"),
    ],
)
def test_an_unusable_url_is_one_line_at_startup(inner: pytest.Pytester, url: str, message: str) -> None:
    inner.makepyfile("def test_a(aep_emulator):\n    pass\n\ndef test_b(aep_emulator):\n    pass\n")
    result = inner.runpytest_subprocess(f"--aep-emulator-url={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, errors
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.fixture(scope="module")
def real_clock_emulator() -> Iterator[str]:
    """`aep-emulator serve --port 0` (the CLI's default clock: real); yields its URL."""
    yield from _serve("--port", "0")


def test_a_server_whose_clock_is_not_manual_gets_one_warning(
    inner: pytest.Pytester, real_clock_emulator: str
) -> None:
    inner.makepyfile(FRESH_TESTS.replace('assert aep_emulator.clock.mode == "manual"', ""))
    result = inner.runpytest(f"--aep-emulator-url={real_clock_emulator}")
    result.assert_outcomes(passed=4, warnings=1)
    result.stdout.fnmatch_lines([f"*the emulator at {real_clock_emulator} runs a real clock*--clock manual*"])


def test_a_manual_clock_gets_no_warning(inner: pytest.Pytester, running_emulator: str) -> None:
    inner.makepyfile(FRESH_TESTS)
    inner.runpytest(f"--aep-emulator-url={running_emulator}").assert_outcomes(passed=4, warnings=0)


def test_runs_that_do_not_use_the_fixture_start_nothing(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import sys, threading

        def test_nothing_started():
            assert not [t for t in threading.enumerate() if t.name == "aep-emulator"]
            assert "emulator.app" not in sys.modules
            assert "aiohttp" not in sys.modules
        """
    )
    # A fresh interpreter, so that nothing this process imported hides a cost; without the plugins
    # that import aiohttp themselves.
    inner.runpytest_subprocess("-p", "no:aiohttp", "-p", "no:asyncio").assert_outcomes(passed=1)
