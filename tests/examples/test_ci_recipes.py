"""The CI recipes in examples/ci run: their shell steps, as the CI would run them, against a real emulator.

Each recipe's steps run in order in a fresh virtual environment (linked to this one's packages, so that
`pip install` works offline: it installs this checkout, built here without build isolation), on a free
port on 127.0.0.1, over a small project whose one failing test must leave its HAR file and the emulator's
log where the recipe's artifact step picks them up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "examples" / "ci"
STEP_TIMEOUT = 180

PROJECT_TEST = """
import urllib.request

JOBS = "/data/core/ups/export/jobs"


def test_lists_jobs(aep_emulator):
    request = urllib.request.Request(aep_emulator.url + JOBS, headers=aep_emulator.headers())
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def test_polls_a_job_that_is_not_there(aep_emulator):
    aep_emulator.assert_requested("GET", JOBS + "/*", times=1)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A project folder with a failing test, and the environment a CI job would give the recipe."""
    folder = tmp_path / "project"
    (folder / "tests").mkdir(parents=True)
    (folder / "tests" / "test_integration.py").write_text(PROJECT_TEST)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=STEP_TIMEOUT
    )
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "_parent_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AEP_EMULATOR_", "PYTEST_", "VIRTUAL_ENV"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PIP_NO_INDEX="1",  # offline: everything but this checkout is already installed
        PIP_NO_BUILD_ISOLATION="0",  # pip reads this as --no-build-isolation: hatchling from this environment
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    yield folder, env
    pid_file = folder / "aep-emulator.pid"
    if pid_file.exists():  # the emulator the recipe started
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


def run_shell(script: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
    )


def recipe_env(variables: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    merged = {**env, **{name: str(value) for name, value in variables.items()}}
    merged["AEP_EMULATOR_PACKAGE"] = str(ROOT)  # this checkout, instead of the published package
    merged["AEP_EMULATOR_PORT"] = str(free_port())
    return merged


def check_failure_left_its_traces(folder: Path, har_dir: str, paths: list[str]) -> None:
    assert sorted(p.rstrip("/") for p in paths) == ["aep-emulator-har", "aep-emulator.log"]
    (har,) = (folder / har_dir).iterdir()
    assert har.name == "tests_test_integration.py_test_polls_a_job_that_is_not_there.har"
    assert json.loads(har.read_text())["log"]["entries"] == []  # that test sent nothing
    ready, *rest = (folder / "aep-emulator.log").read_text().splitlines()  # stdout and stderr, together
    assert ready.startswith("aep-emulator listening on http://127.0.0.1:")
    log_lines = [json.loads(line) for line in rest]  # --log-format json: every log line is JSON
    requests = [line for line in log_lines if line.get("logger") == "emulator.requests"]
    assert any(line["path"] == "/_emulator/health" for line in requests)  # the wait step, and the fixture
    served = [line for line in requests if line["path"].startswith("/data/")]
    assert [(line["method"], line["path"], line["status"]) for line in served] == [
        ("GET", "/data/core/ups/export/jobs", 200)
    ]


def test_the_github_actions_workflow_runs(project: tuple[Path, dict[str, str]]) -> None:
    folder, base_env = project
    workflow = yaml.safe_load((RECIPES / "github-actions.yml").read_text())
    job = workflow["jobs"]["integration"]
    env = recipe_env(job["env"], base_env)
    shell_steps = [step for step in job["steps"] if "run" in step]
    assert [step["name"] for step in shell_steps] == [
        "Install the emulator and pytest",
        "Start the emulator",
        "Wait for /_emulator/health",
        "Run the tests against it",
    ]
    for step in shell_steps[:-1]:
        result = run_shell(step["run"], folder, env)
        assert result.returncode == 0, f"{step['name']}: {result.stdout}{result.stderr}"
    tests = run_shell(shell_steps[-1]["run"], folder, env)
    assert tests.returncode == 1, tests.stdout + tests.stderr  # one test fails, on purpose
    assert "1 failed, 1 passed" in tests.stdout
    assert "aep-emulator requests" in tests.stdout  # the report section, in the CI log
    (upload,) = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["if"] == "failure()"
    check_failure_left_its_traces(folder, env["HAR_DIR"], upload["with"]["path"].split())


def test_the_gitlab_ci_job_runs(project: tuple[Path, dict[str, str]]) -> None:
    folder, base_env = project
    job = yaml.safe_load((RECIPES / "gitlab-ci.yml").read_text())["aep-emulator-integration"]
    env = recipe_env(job["variables"], base_env)
    setup = run_shell("\n".join(job["before_script"]), folder, env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    tests = run_shell("\n".join(job["script"]), folder, env)
    assert tests.returncode == 1, tests.stdout + tests.stderr
    assert "1 failed, 1 passed" in tests.stdout
    assert job["artifacts"]["when"] == "on_failure"
    check_failure_left_its_traces(folder, env["HAR_DIR"], job["artifacts"]["paths"])
