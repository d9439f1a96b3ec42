"""The command line, run as users run it: `python -m emulator` in a subprocess.

Nothing here sleeps: a test waits for the ready line (with a timeout) and for the process to exit.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import aep_headers, assert_matches

READY = re.compile(r"aep-emulator listening on http://(127\.0\.0\.1):(\d+)\n")
TIMEOUT = 60
BUNDLED = {
    "empty",
    "failure",
    "flaky-gateway",
    "partial-errors",
    "slow",
    "stuck",
    "success",
    "segment-success",
    "segment-failure",
    "segment-stuck",
    "segment-slow",
}

GOOD_SCENARIO = """\
description: a scenario for the CLI tests
steps:
  - status: NEW
  - status: SUCCEEDED
    after: {polls: 1}
"""
BAD_STATUS = """\
steps:
  - status: NEW
  - status: DONE
    after: {polls: 1}
"""
BAD_YAML = "steps: [\n  - status: NEW\n"
UNKNOWN_KEY = """\
steps:
  - status: NEW
  - status: SUCCEEDED
    after: {polls: 1, minutes: 3}
"""


def clean_env(**variables: str) -> dict[str, str]:
    """The test's environment without any AEP_EMULATOR_* a developer may have set, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AEP_EMULATOR_")}
    env.update(variables)
    return env


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env or clean_env(),
    )


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str

    def request(
        self, method: str, path: str, schema: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Status and JSON body, checked against `schema`."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                status, answer = response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            status, answer = error.code, json.loads(error.read())
        assert_matches(schema, answer)
        return status, answer

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=TIMEOUT)


Start = Callable[..., Server]


def launch(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """`python -m emulator serve ARGS` and its first line on stdout ("" if it exited without one)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or clean_env(),
    )
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], TIMEOUT)
    if not readable:
        process.kill()
        process.communicate(timeout=TIMEOUT)
        pytest.fail("no ready line in time")
    return process, process.stdout.readline()


@pytest.fixture
def start() -> Iterator[Start]:
    """Starts `python -m emulator serve ARGS` and returns once it printed its ready line."""
    processes: list[subprocess.Popen[str]] = []

    def starter(*args: str, env: dict[str, str] | None = None) -> Server:
        process, line = launch(*args, env=env)
        processes.append(process)
        match = READY.fullmatch(line)
        if match is None:
            process.kill()
            _, stderr = process.communicate(timeout=TIMEOUT)
            pytest.fail(f"unexpected first line {line!r}; stderr: {stderr}")
        return Server(process, f"http://{match.group(1)}:{match.group(2)}")

    yield starter
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=TIMEOUT)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aep-emulator: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_then_stops_cleanly(start: Start, signum: int) -> None:
    server = start("--port", "0", "--clock", "manual")
    status, health = server.request("GET", "/_emulator/health", "control.health.response")
    assert status == 200
    assert health["status"] == "ok"
    status, created = server.request(
        "POST", "/data/foundation/catalog/dataSets", "dataset.create.response", {"name": "cli"}, aep_headers()
    )
    assert status == 201
    assert created[0].startswith("@/dataSets/")
    status, error = server.request("GET", "/data/core/ups/export/jobs/1", "error.ups", headers=aep_headers())
    assert status == 404
    assert error["status"] == 404
    assert server.stop(signum) == 0
    stdout, stderr = server.process.communicate(timeout=TIMEOUT)
    assert stdout == ""
    assert "Traceback" not in stderr


def test_port_zero_picks_distinct_free_ports(start: Start) -> None:
    first = start("--port", "0")
    second = start("--port", "0")
    assert first.url != second.url
    for server in (first, second):
        assert server.request("GET", "/_emulator/health", "control.health.response")[0] == 200
        assert server.stop(signal.SIGTERM) == 0


def test_environment_variables_configure_serve(start: Start, tmp_path: Path) -> None:
    extra = tmp_path / "cli-extra.yaml"
    extra.write_text(GOOD_SCENARIO)
    start_time = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    env = clean_env(
        AEP_EMULATOR_PORT="0",
        AEP_EMULATOR_HOST="127.0.0.1",
        AEP_EMULATOR_CLOCK="manual",
        AEP_EMULATOR_SPEED="2.5",
        AEP_EMULATOR_START_TIME="2024-01-02T03:04:05Z",
        AEP_EMULATOR_DEFAULT_SCENARIO="failure",
        AEP_EMULATOR_SCENARIOS=str(extra),
        AEP_EMULATOR_LOG_LEVEL="error",
    )
    server = start(env=env)
    status, clock = server.request("GET", "/_emulator/clock", "control.clock.response")
    assert status == 200
    assert clock == {"mode": "manual", "now": int(start_time.timestamp() * 1000), "speed": 2.5}
    status, scenarios = server.request("GET", "/_emulator/scenarios", "control.scenarios.response")
    assert status == 200
    assert scenarios["default"] == "failure"
    assert {s["name"] for s in scenarios["scenarios"]} == BUNDLED | {"cli-extra"}
    assert server.stop(signal.SIGTERM) == 0


def test_flags_override_environment(start: Start) -> None:
    env = clean_env(AEP_EMULATOR_PORT="1", AEP_EMULATOR_CLOCK="real", AEP_EMULATOR_DEFAULT_SCENARIO="failure")
    server = start("--port", "0", "--clock", "manual", "--default-scenario", "stuck", env=env)
    assert server.request("GET", "/_emulator/clock", "control.clock.response")[1]["mode"] == "manual"
    scenarios = server.request("GET", "/_emulator/scenarios", "control.scenarios.response")[1]
    assert scenarios["default"] == "stuck"
    assert server.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["serve", "--bogus"], "--bogus"),
        (["serve", "--port", "notaport"], "--port"),
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--clock", "sideways"], "--clock"),
        (["serve", "--speed", "0"], "--speed"),
        (["serve", "--speed", "fast"], "--speed"),
        (["serve", "--seed", "x"], "--seed"),
        (["serve", "--start-time", "yesterday"], "--start-time"),
        (["serve", "--start-time", "2024-01-01T00:00:00"], "--start-time"),
        (["serve", "--auth", "maybe"], "--auth"),
        (["serve", "--port", "0", "--default-scenario", "nope"], "nope"),
        (["frobnicate"], "frobnicate"),
        (["scenarios", "validate"], "PATH"),
        (["scenarios", "frobnicate"], "frobnicate"),
        (["openapi", "--indent", "-1"], "--indent"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], named: str) -> None:
    line = one_error_line(run(*args))
    assert named in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AEP_EMULATOR_PORT", "abc"),
        ("AEP_EMULATOR_SPEED", "-1"),
        ("AEP_EMULATOR_SEED", "many"),
        ("AEP_EMULATOR_START_TIME", "soon"),
        ("AEP_EMULATOR_DEFAULT_SCENARIO", "nope"),
    ],
)
def test_bad_environment_values_exit_2_with_one_line(variable: str, value: str) -> None:
    line = one_error_line(run("serve", env=clean_env(**{"AEP_EMULATOR_PORT": "0", variable: value})))
    assert value in line
    assert f"environment variable {variable}: " in line  # the variable, not the flag it stands for
    assert "argument --" not in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AEP_EMULATOR_CLOCK", "sideways"), ("AEP_EMULATOR_AUTH", "maybe"), ("AEP_EMULATOR_LOG_LEVEL", "loud")],
)
def test_bad_environment_choices_exit_2_with_one_line(variable: str, value: str) -> None:
    process, line = launch(env=clean_env(**{"AEP_EMULATOR_PORT": "0", variable: value}))
    if line:
        process.kill()
        process.communicate(timeout=TIMEOUT)
        pytest.fail(f"{variable}={value} was accepted: {line!r}")
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    line = one_error_line(result)
    assert value.lower() in line.lower()
    assert f"environment variable {variable}: invalid choice" in line


@pytest.mark.parametrize(
    ("content", "yaml_path", "reason"),
    [
        (BAD_STATUS, "steps[1].status", "'DONE' is not one of"),
        (BAD_YAML, "line ", "not valid YAML"),
        (UNKNOWN_KEY, "steps[1].after.minutes", "unknown key"),
    ],
    ids=["bad-status", "bad-yaml", "unknown-key"],
)
@pytest.mark.parametrize("how", ["flag", "env"])
def test_invalid_scenario_file_exits_2_naming_file_path_and_reason(
    tmp_path: Path, content: str, yaml_path: str, reason: str, how: str
) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text(content)
    if how == "flag":
        result = run("serve", "--port", "0", "--scenarios", str(bad))
    else:
        result = run("serve", env=clean_env(AEP_EMULATOR_PORT="0", AEP_EMULATOR_SCENARIOS=str(bad)))
    line = one_error_line(result)
    assert str(bad) in line
    assert yaml_path in line
    assert reason in line
    assert result.stdout == ""


def test_missing_scenario_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    line = one_error_line(run("serve", "--port", "0", "--scenarios", str(missing)))
    assert str(missing) in line


def test_scenarios_validate_good_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_SCENARIO)
    result = run("scenarios", "validate", str(good))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ok {good} (good)\n"
    assert result.stderr == ""


def test_scenarios_validate_reports_every_bad_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_SCENARIO)
    bad_status = tmp_path / "bad-status.yaml"
    bad_status.write_text(BAD_STATUS)
    bad_yaml = tmp_path / "bad-yaml.yaml"
    bad_yaml.write_text(BAD_YAML)
    result = run("scenarios", "validate", str(bad_status), str(good), str(bad_yaml))
    assert result.returncode == 2
    assert result.stdout == f"ok {good} (good)\n"
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert str(bad_status) in errors[0] and "steps[1].status" in errors[0]
    assert str(bad_yaml) in errors[1] and "not valid YAML" in errors[1]


def test_scenarios_validate_a_folder() -> None:
    folder = Path(__file__).resolve().parents[2] / "scenarios"
    result = run("scenarios", "validate", str(folder))
    assert result.returncode == 0, result.stderr
    matches = [re.fullmatch(r"ok .+ \((.+)\)", line) for line in result.stdout.splitlines()]
    assert {m.group(1) for m in matches if m} == BUNDLED
    assert all(matches)


def test_scenarios_list_shows_the_bundled_ones() -> None:
    result = run("scenarios", "list")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert {row[0] for row in rows} == BUNDLED
    assert all(len(row) == 3 and row[1].endswith(f"{row[0]}.yaml") and row[2] for row in rows)


def test_scenarios_list_with_extra_files(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(GOOD_SCENARIO)
    result = run("scenarios", "list", "--scenarios", str(extra))
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert ["extra", str(extra), "a scenario for the CLI tests"] in rows
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_STATUS)
    assert str(bad) in one_error_line(run("scenarios", "list", "--scenarios", str(bad)))
