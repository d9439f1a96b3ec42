"""This repository's `pytest`: on every core with pytest-xdist, in one process without it (conftest.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ONE_TEST = "tests/plugin/test_testing_client.py::test_an_unreachable_url"


def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", *args, ONE_TEST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_xdist_the_tests_run_in_one_process() -> None:
    """`-p no:xdist` stands for an environment without pytest-xdist: nothing asks for `-n` then."""
    result = pytest_run("-p", "no:xdist")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "[gw" not in result.stdout


@pytest.mark.parametrize(("args", "workers"), [((), True), (("-n0",), False), (("-n", "1"), True)])
def test_with_xdist_the_tests_run_in_workers_unless_told(args: tuple[str, ...], workers: bool) -> None:
    result = pytest_run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert bool(re.search(r"^\[gw\d+\] .*PASSED", result.stdout, re.MULTILINE)) == workers, result.stdout
