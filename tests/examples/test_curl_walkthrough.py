"""Runs curl_walkthrough.sh (the recipe for non-Python clients) against `aep-emulator serve --port 0`."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import assert_matches

SCRIPT = Path(__file__).with_name("curl_walkthrough.sh")


@pytest.fixture
def standalone_emulator() -> Iterator[str]:
    """`aep-emulator serve --port 0` in a subprocess (real clock, as the CLI defaults); yields its URL."""
    script = Path(sys.executable).with_name("aep-emulator")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "emulator"]
    process = subprocess.Popen(
        [*command, "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        assert line.startswith("aep-emulator listening on http://127.0.0.1:"), (
            f"{line!r} {process.stderr.read()}"
        )
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        assert process.wait(30) == 0


def service(path: str) -> str:
    """`ims`, or the AEP service of a /data/<area>/<service>/... path."""
    parts = path.split("/")
    return parts[1] if parts[1] == "ims" else parts[3]


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs bash and curl"
)
def test_the_curl_walkthrough_runs_the_whole_flow(standalone_emulator: str) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "AEP_URL": standalone_emulator},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    output = result.stdout
    for expected in (
        "SUCCEEDED, batch ",
        "batch success",
        ".parquet: ",
        "FAILED: Error writing profiles to output path",
        "PROCESSING after an hour",
        "DELETE: Export job has been marked for cancelling",
        "CANCELLED",
    ):
        assert expected in output, output
    assert output.rstrip().endswith("done")

    journal = requests.get(f"{standalone_emulator}/_emulator/requests", timeout=30).json()
    assert_matches("control.requests.response", journal)
    calls = [(entry["method"], service(entry["path"]), entry["status"]) for entry in journal["requests"]]
    assert all(status < 400 for _, _, status in calls), calls
    assert [(method, service) for method, service, _ in calls[:3]] == [
        ("POST", "ims"),
        ("POST", "catalog"),
        ("POST", "ups"),
    ]
    assert {service for _, service, _ in calls} == {"ims", "catalog", "ups", "export"}
