"""Drift mode itself: its configuration, and the whole drift run pointed at a live emulator over HTTP.

A real sandbox is not available here, so the drift cases run against `aep-emulator` started as AEP is met
(strict auth, a credentials file, one org), through the same AEP_DRIFT_* variables a user's CI sets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.options import Options
from emulator.runner import EmulatorServer
from tests.conftest import assert_matches
from tests.contract.cases import CASES
from tests.contract.support import DRIFT_REQUIRED, DriftConfig

ROOT = Path(__file__).resolve().parents[2]
CLIENT, SECRET, ORG = "drift-client", "drift-secret", "DRIFT@AdobeOrg"


def test_unconfigured_drift_names_every_missing_variable() -> None:
    environ = {"AEP_DRIFT_BASE_URL": "https://platform.adobe.io"}
    assert DriftConfig.from_env(environ) is None
    reason = DriftConfig.skip_reason(environ)
    for name in DRIFT_REQUIRED[1:]:
        assert name in reason
    assert "AEP_DRIFT_BASE_URL" not in reason


def test_configured_drift_defaults() -> None:
    environ = {name: f"value-{name}/" for name in DRIFT_REQUIRED}
    config = DriftConfig.from_env(environ)
    assert config is not None
    assert config.base_url == "value-AEP_DRIFT_BASE_URL"  # trailing slash dropped
    assert (config.sandbox, config.allow_writes) == ("prod", False)
    assert "AdobeID" in config.scopes
    assert DriftConfig.from_env({**environ, "AEP_DRIFT_ALLOW_WRITES": "1"}).allow_writes  # type: ignore[union-attr]


@pytest.fixture
def aep_like(tmp_path: Path) -> Iterator[EmulatorServer]:
    credentials = tmp_path / "credentials.yaml"
    credentials.write_text(f"clients:\n  {CLIENT}:\n    secret: {SECRET}\n    orgs: ['{ORG}']\n")
    server = EmulatorServer(
        Options(host="127.0.0.1", port=0, clock="manual", auth="strict", credentials_file=credentials)
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _call(url: str, method: str, path: str, token: str, body: Any = None) -> Any:
    headers = {
        "Authorization": f"Bearer {token}",
        "x-api-key": CLIENT,
        "x-gw-ims-org-id": ORG,
        "Content-Type": "application/json",
    }
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url + path, data, headers, method=method)) as reply:
        return json.load(reply)


def _seed(url: str) -> None:
    """What a sandbox already has: a dataset and a finished export job."""
    form = f"grant_type=client_credentials&client_id={CLIENT}&client_secret={SECRET}&scope=openid".encode()
    with urllib.request.urlopen(urllib.request.Request(url + "/ims/token/v3", form)) as reply:
        minted = json.load(reply)
    assert_matches("ims.token.response", minted)
    token = minted["access_token"]
    dataset = _call(url, "POST", "/data/foundation/catalog/dataSets", token, {"name": "existing"})
    assert_matches("dataset.create.response", dataset)
    body = {
        "destination": {"datasetId": dataset[0].rsplit("/", 1)[1]},
        "schema": {"name": "_xdm.context.profile"},
    }
    job = _call(url, "POST", "/data/core/ups/export/jobs", token, body)
    while job["status"] != "SUCCEEDED":
        job = _call(url, "GET", f"/data/core/ups/export/jobs/{job['id']}", token)
        assert_matches("export-job.response", job)


def test_drift_run_against_an_aep_compatible_server(aep_like: EmulatorServer) -> None:
    _seed(aep_like.url)
    env = {
        **os.environ,
        "AEP_DRIFT_BASE_URL": aep_like.url,
        "AEP_DRIFT_IMS_URL": aep_like.url,
        "AEP_DRIFT_CLIENT_ID": CLIENT,
        "AEP_DRIFT_CLIENT_SECRET": SECRET,
        "AEP_DRIFT_ORG_ID": ORG,
        "AEP_DRIFT_ALLOW_WRITES": "1",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "drift",
            "-n0",
            "tests/contract/test_responses.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    summary = re.search(r"(\d+) passed", output)
    assert summary is not None, output
    drift_cases = sum(1 for case in CASES if case.drift is not None)
    # Every drift case and the configuration check ran; none was skipped for lack of data.
    assert int(summary.group(1)) == drift_cases + 1, output
    assert "skipped" not in output.splitlines()[-1], output
