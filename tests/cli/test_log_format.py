"""`--log-format text|json`: one line per request (INFO), a WARNING line per near miss."""

# ruff: noqa: F811  (`start` is the fixture of tests/cli/test_cli.py, imported to be used here)

from __future__ import annotations

import json
import logging
import signal

import pytest

from emulator import logs
from tests.cli.test_cli import Server, Start, start  # noqa: F401  (the fixture)
from tests.conftest import aep_headers

JOBS = "/data/core/ups/export/jobs"


def traffic(server: Server) -> None:
    server.request("GET", JOBS, "export-job.list.response", headers=aep_headers(**{"x-request-id": "ok-1"}))
    server.request("GET", "/data/core/ups/export/job", "error.ups", headers=aep_headers())


def test_json_lines(start: Start) -> None:
    server = start("--port", "0", "--clock", "manual", "--log-format", "json", "--log-level", "INFO")
    traffic(server)
    assert server.stop(signal.SIGTERM) == 0
    _, stderr = server.process.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON
    requests = [line for line in lines if line["logger"] == "emulator.requests"]
    assert [(r["level"], r["method"], r["path"], r["status"]) for r in requests] == [
        ("INFO", "GET", JOBS, 200),
        ("WARNING", "GET", "/data/core/ups/export/job", 404),
    ]
    served, missed = requests
    assert set(served) == {"time", "level", "logger", "message", *logs.FIELDS}
    assert served["requestId"] == "ok-1" and served["hint"] is None
    assert (served["org"], served["sandbox"]) == ("TESTORG@AdobeOrg", "prod")
    assert served["durationMs"] >= 0 and served["message"] == f"GET {JOBS} 200"
    assert missed["hint"].startswith("no route for GET /data/core/ups/export/job; closest: ")
    assert missed["requestId"]  # an error answer always carries one


def test_text_lines_and_only_near_misses_at_warning(start: Start) -> None:
    server = start("--port", "0", "--clock", "manual")  # --log-level WARNING, --log-format text
    traffic(server)
    assert server.stop(signal.SIGTERM) == 0
    _, stderr = server.process.communicate(timeout=30)
    (line,) = [line for line in stderr.splitlines() if "emulator.requests" in line]
    assert " WARNING emulator.requests: GET /data/core/ups/export/job 404: no route for " in line
    assert " GET /data/core/ups/export/job 404: no route for GET /data/core/ups/export/job; closest: " in line
    assert "hint=" not in line  # in the message already
    assert "org=TESTORG@AdobeOrg sandbox=prod durationMs=" in line and "job=- scenario=- fault=-" in line


@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JsonFormatter()])
def test_other_lines_keep_the_format(formatter: logging.Formatter) -> None:
    record = logging.LogRecord("emulator", logging.ERROR, __file__, 1, "saved %s", ("x",), None)
    text = formatter.format(record)
    if isinstance(formatter, logs.JsonFormatter):
        assert json.loads(text)["message"] == "saved x"
    else:
        assert text.endswith(" ERROR emulator: saved x")
