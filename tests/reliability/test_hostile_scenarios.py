"""Scenarios that could hurt the server (issue 12, findings 1, 2, 3, the scenario part of 9 and the upload cap
of 6): every way a scenario loads (upload, `scenarios validate`, `serve --scenarios`, a state file) refuses
the same documents with the same YAML path and reason, and what is accepted never makes the server answer
5xx."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator import persistence
from emulator.api import control
from emulator.api.control import MAX_SCENARIO_BYTES
from emulator.backend import Backend
from emulator.faults import MAX_FAULT_HEADERS_BYTES
from emulator.options import Options
from emulator.persistence import StateError
from emulator.scenarios import (
    MAX_DOCUMENT_DEPTH,
    MAX_UPLOADED_SCENARIO_BYTES,
    MAX_UPLOADED_SCENARIOS,
    parse_text,
)
from tests.conftest import Aep, assert_matches
from tests.reliability.conftest import TIMEOUT, clean_env, launch

SCENARIOS = "/_emulator/scenarios"
JOBS = "/data/core/ups/export/jobs"
STEPS = (
    "steps: [{status: NEW}, {status: PROCESSING, after: {polls: 1}},"
    " {status: SUCCEEDED, after: {polls: 1}}]\n"
)


def with_steps(more: str) -> str:
    return f"name: hostile\n{STEPS}{more}\n"


def after(value: str) -> str:
    return f"name: hostile\nsteps: [{{status: NEW}}, {{status: SUCCEEDED, after: {{seconds: {value}}}}}]\n"


def fault(respond: str) -> str:
    return with_steps(f"faults: [{{operation: get_job, respond: {{status: 503, {respond}}}}}]")


def header(name: str, value: str) -> str:
    return with_steps(
        f"faults: [{{operation: get_job, respond: {{status: 503, headers: {{{name}: {value}}}}}}}]"
    )


# (id, document, the YAML path the refusal names, a fragment of its reason)
HOSTILE: list[tuple[str, str, str, str]] = [
    # finding 1: numbers that are not finite, or out of their documented bounds
    (
        "delay-nan",
        with_steps("faults: [{operation: get_job, delay: {seconds: .nan}}]"),
        "faults[0].delay.seconds",
        ".nan is not a number",
    ),
    ("after-inf", after(".inf"), "steps[1].after.seconds", "not a finite number"),
    ("after-minus-inf", after("-.inf"), "steps[1].after.seconds", "not a finite number"),
    ("after-nan", after(".nan"), "steps[1].after.seconds", ".nan is not a number"),
    ("after-1e400", after("1.0e+400"), "steps[1].after.seconds", "1.0e+400 reads as .inf"),
    ("after-past-its-maximum", after("1.0e+12"), "steps[1].after.seconds", "maximum"),
    (
        "polls-past-its-maximum",
        after("1").replace("seconds: 1", "polls: 10000000000"),
        "steps[1].after.polls",
        "maximum",
    ),
    (
        "times-past-its-maximum",
        with_steps("faults: [{operation: get_job, times: 10000000000, respond: {status: 503}}]"),
        "faults[0].times",
        "maximum",
    ),
    ("count-true", with_steps("profiles: {count: true}"), "profiles.count", "not of type 'integer'"),
    (
        "events-nan",
        with_steps("profiles: {eventsPerProfile: [0, .nan]}"),
        "profiles.eventsPerProfile[1]",
        ".nan is not a number",
    ),
    (
        "json-1e400",
        '{"name": "hostile", "steps": [{"status": "NEW"},'
        ' {"status": "SUCCEEDED", "after": {"seconds": 1.0e+400}}]}',
        "steps[1].after.seconds",
        "not a finite number",
    ),
    # finding 2: keys that are not strings, anywhere
    ("match-int-key", with_steps("match: {1: a}"), "match.1", "a key must be a string, not a number (1)"),
    ("match-null-key", with_steps("match: {null: a}"), "match.null", "a key must be a string, not null"),
    (
        "match-bool-key",
        with_steps("match: {true: a}"),
        "match.true",
        "a key must be a string, not a boolean (true)",
    ),
    ("body-int-key", fault("body: {x: {2: y}}"), "faults[0].respond.body.x.2", "a key must be a string"),
    ("top-level-float-key", with_steps("1.5: x"), "1.5", "a key must be a string"),
    # finding 3: fault answers must be valid HTTP
    ("body-date", fault("body: {x: 2020-01-01}"), "faults[0].respond.body.x", "YAML timestamp (2020-01-01)"),
    ("body-binary", fault("body: !!binary aGVsbG8="), "faults[0].respond.body", "!!binary"),
    ("body-set", fault("body: !!set {a, b}"), "faults[0].respond.body", "!!set"),
    ("body-nan", fault("body: {x: .nan}"), "faults[0].respond.body.x", ".nan is not a number"),
    (
        "body-huge-int",
        fault("body: 123456789012345678901234567890"),
        "faults[0].respond.body",
        "cannot be sent as JSON",
    ),
    ("body-lone-surrogate", fault('body: {x: "\\uD800"}'), "faults[0].respond.body.x", "lone surrogate"),
    (
        "description-timestamp",
        with_steps("description: 2024-01-01 10:00:00"),
        "description",
        "YAML timestamp",
    ),
    (
        "status-fractional",
        fault("body: {}").replace("status: 503", "status: 503.5"),
        "faults[0].respond.status",
        "not of type 'integer'",
    ),
    (
        "status-600",
        fault("body: {}").replace("status: 503", "status: 600"),
        "faults[0].respond.status",
        "maximum",
    ),
    *(
        (f"header-{name.lower()}", header(name, '"1"'), f"faults[0].respond.headers.{name}", "may not set")
        for name in (
            "Content-Length",
            "Transfer-Encoding",
            "Connection",
            "Keep-Alive",
            "Upgrade",
            "TE",
            "Trailer",
            "Proxy-Authenticate",
            "Proxy-Connection",
            "Content-Type",
            "content-encoding",
            "X-Request-Id",
        )
    ),
    ("header-name-space", header("X A", "b"), "faults[0].respond.headers.X A", "not a valid header name"),
    ("header-name-colon", header('"X:A"', "b"), "faults[0].respond.headers.X:A", "not a valid header name"),
    ("header-name-empty", header('""', "b"), "faults[0].respond.headers.", "not a valid header name"),
    (
        "header-value-crlf",
        header("X-A", '"a\\r\\nX-Injected: b"'),
        "faults[0].respond.headers.X-A",
        "no CR, LF or NUL",
    ),
    ("header-value-lf", header("X-A", '"a\\nb"'), "faults[0].respond.headers.X-A", "no CR, LF or NUL"),
    ("header-value-nul", header("X-A", '"a\\0b"'), "faults[0].respond.headers.X-A", "no CR, LF or NUL"),
    ("header-value-control", header("X-A", '"a\\x1bb"'), "faults[0].respond.headers.X-A", "visible ASCII"),
    (
        "header-value-non-ascii",
        header("X-A", '"caf\\u00e9"'),
        "faults[0].respond.headers.X-A",
        "visible ASCII",
    ),
    (
        "headers-too-long",
        header("X-A", "x" * MAX_FAULT_HEADERS_BYTES),
        "faults[0].respond.headers",
        f"at most {MAX_FAULT_HEADERS_BYTES}",
    ),
    # finding 9: nesting
    (
        "nested-5000-flow",
        with_steps("description: " + "[" * 5000 + "]" * 5000),
        "<document>",
        "nests too deeply",
    ),
    ("nested-100000-flow", "[" * 100_000 + "]" * 100_000, "<document>", "nests too deeply"),
    (
        "nested-700-block",
        "".join(" " * i + "-\n" for i in range(700)),
        "[0]" * (MAX_DOCUMENT_DEPTH + 1),
        "nests deeper",
    ),
    (
        "nested-body",
        fault("body: " + "[" * 100 + "]" * 100),
        "faults[0].respond.body" + "[0]" * 61,
        f"nests deeper than {MAX_DOCUMENT_DEPTH} levels",
    ),
]
IDS = [case[0] for case in HOSTILE]


def expected(case: tuple[str, str, str, str]) -> str:
    _, _, where, _ = case
    return f"{where}: "


async def default_job_still_works(aep: Aep) -> None:
    """The server is unharmed: a job of the default scenario is created, polled and listed."""
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    assert (await aep.get_job(job["id"]))["status"] == "PROCESSING"
    await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
    response = await aep.client.get("/_emulator/jobs?all=true")
    assert response.status == 200


@pytest.mark.parametrize("case", HOSTILE, ids=IDS)
async def test_an_upload_refuses_a_hostile_scenario_naming_path_and_reason(
    client: TestClient[Any, Any], aep: Aep, caplog: pytest.LogCaptureFixture, case: tuple[str, str, str, str]
) -> None:
    _, text, where, reason = case
    caplog.set_level(logging.WARNING)
    response = await client.post(SCENARIOS, data=text.encode())
    body = await response.json()
    assert response.status == 400, body
    assert_matches("error.problem", body)
    assert body["detail"].startswith(f"Invalid scenario: upload: {where}: "), body["detail"]
    assert reason in body["detail"], body["detail"]
    assert len(body["detail"]) < 500  # one line to act on, not the document back
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback in the log
    listed = await (await client.get(SCENARIOS)).json()
    assert "hostile" not in {s["name"] for s in listed["scenarios"]}
    await default_job_still_works(aep)


async def test_scenarios_validate_agrees_with_the_upload(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    """One `scenarios validate` over every hostile file: exit 2, one line per file, with the very path and
    reason the upload gives."""
    files = []
    for name, text, _, _ in HOSTILE:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "scenarios", "validate", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env(),
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == len(HOSTILE), lines
    for path, line, (_, text, _, _) in zip(files, lines, HOSTILE, strict=True):
        response = await client.post(SCENARIOS, data=text.encode())
        detail = (await response.json())["detail"]
        assert line == f"aep-emulator: error: {path}: " + detail.removeprefix("Invalid scenario: upload: ")


def test_serve_refuses_a_hostile_scenario_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(with_steps("match: {1: a}"), encoding="utf-8")
    served = launch("--clock", "manual", "--scenarios", str(path))
    assert not served.url, "the server started"
    _, stderr = served.process.communicate(timeout=TIMEOUT)
    lines = stderr.decode().splitlines()
    assert served.process.returncode == 2, lines
    assert lines == [
        f"aep-emulator: error: {path}: match.1: a key must be a string, not a number (1); quote it"
    ]


def test_scenarios_validate_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    """/dev/zero would be read forever; a file past the upload's limit is refused as the upload is."""
    big = tmp_path / "big.yaml"
    big.write_text(with_steps("description: " + "x" * MAX_SCENARIO_BYTES), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "scenarios", "validate", "/dev/zero", str(big)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env(),
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "aep-emulator: error: /dev/zero: <document>: not a regular file",
        f"aep-emulator: error: {big}: <document>: larger than {MAX_SCENARIO_BYTES} bytes, "
        "the most a scenario may be",
    ]


def test_a_state_file_with_a_hostile_scenario_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A scenario saved in a state file is parsed again on load, by the same checks."""
    backend = Backend(Options(clock="manual"))
    backend.scenarios.add(parse_text(with_steps(""), source="upload"))
    state = backend.state()
    (saved,) = state["scenarios"]["uploaded"]
    saved["text"] = after(".nan")
    path = tmp_path / "state.json"
    path.write_bytes(persistence.encode(state, backend.compatibility()))
    served = launch("--clock", "manual", "--state-file", str(path))
    assert not served.url, "the server started"
    _, stderr = served.process.communicate(timeout=TIMEOUT)
    lines = stderr.decode().splitlines()
    assert served.process.returncode == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"aep-emulator: error: state file {path}: "), lines
    assert "steps[1].after.seconds: .nan is not a number" in lines[0], lines


# -- what is accepted works ---------------------------------------------------------------------------


async def test_integers_written_as_floats_work_as_integers(client: TestClient[Any, Any], aep: Aep) -> None:
    """JSON Schema's integers include 2.0; before, a count, a file size, a status or a range of events
    written so went through the upload and made the job's reads answer 500."""
    text = with_steps(
        "profiles: {count: 5.0, emptyProfiles: 1.0, eventsPerProfile: [1.0, 2.0]}\n"
        "files: {maxRecordsPerFile: 2.0}\n"
        "faults: [{operation: get_job, times: 1.0, respond: {status: 503.0}}]"
    ).replace("polls: 1}", "polls: 1.0}")
    assert (await client.post(SCENARIOS, data=text.encode())).status == 201
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "hostile"})
    await aep.call("GET", f"{JOBS}/{job['id']}", status=503, schema="error.ups")
    assert (await aep.get_job(job["id"]))["status"] == "PROCESSING"
    done = await aep.get_job(job["id"])
    assert done["status"] == "SUCCEEDED"
    batch_id = done["destination"]["batchId"]
    await aep.call("GET", "/data/foundation/catalog/batches", status=200, schema=None)
    files = await aep.call(
        "GET", f"/data/foundation/export/batches/{batch_id}/files", status=200, schema=None
    )
    assert len(files["data"]) == 3  # 5 profiles, 2 per file


async def test_a_valid_fault_answer_is_sent_as_written(client: TestClient[Any, Any], aep: Aep) -> None:
    nested: Any = "bottom"
    for _ in range(MAX_DOCUMENT_DEPTH - 5):  # the deepest body the document's depth allows
        nested = [nested]
    body = {"message": "caf\u00e9 \u2603", "retry": 1.5, "items": [1, None, True, "x"], "deep": nested}
    text = json.dumps(
        {
            "name": "fine",
            "steps": [{"status": "NEW"}],
            "faults": [
                {
                    "operation": "get_job",
                    "respond": {
                        "status": 429,
                        "headers": {"Retry-After": "2", "X-Trace": "a b\tc", "Set-Cookie": "k=v; Path=/"},
                        "body": body,
                    },
                }
            ],
        }
    )
    upload = await client.post(SCENARIOS, data=text.encode())
    assert upload.status == 201, await upload.text()
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "fine"})
    response = await client.get(f"{JOBS}/{job['id']}", headers=aep.headers())
    assert response.status == 429
    assert response.content_type == "application/json"
    assert response.headers["Retry-After"] == "2"
    assert response.headers["X-Trace"] == "a b\tc"
    assert response.headers["Set-Cookie"] == "k=v; Path=/"
    assert await response.json() == body


async def test_the_longest_documented_step_still_reads(client: TestClient[Any, Any], aep: Aep) -> None:
    ten_years = 315_360_000  # also the longest clock advance
    text = after(str(ten_years)).replace(f"seconds: {ten_years}", f"seconds: {ten_years}, polls: 1000000000")
    assert (await client.post(SCENARIOS, data=text.encode())).status == 201
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "hostile"})
    assert (await aep.get_job(job["id"]))["status"] == "NEW"
    await aep.advance(ten_years)
    assert (await aep.get_job(job["id"]))["status"] == "SUCCEEDED"
    await default_job_still_works(aep)


# -- the cap on uploaded scenarios ---------------------------------------------------------------------


async def test_uploaded_scenarios_are_capped_and_replacing_one_does_not_count_twice(
    client: TestClient[Any, Any],
) -> None:
    for index in range(MAX_UPLOADED_SCENARIOS):
        response = await client.post(SCENARIOS, data=f"name: up-{index}\n{STEPS}".encode())
        assert response.status == 201, await response.text()
    refused = await client.post(SCENARIOS, data=f"name: one-more\n{STEPS}".encode())
    body = await refused.json()
    assert refused.status == 409, body
    assert_matches("error.problem", body)
    assert body["detail"].startswith(f"At most {MAX_UPLOADED_SCENARIOS} scenarios can be uploaded"), body
    # Replacing an uploaded one is not one more; replacing a bundled one is.
    again = await client.post(SCENARIOS, data=f"name: up-7\ndescription: again\n{STEPS}".encode())
    assert again.status == 201
    assert (await client.post(SCENARIOS, data=f"name: success\n{STEPS}".encode())).status == 409
    listed = await (await client.get(SCENARIOS)).json()
    assert (
        len(listed["scenarios"]) == MAX_UPLOADED_SCENARIOS + 11
    )  # and the 11 bundled ones (4 for segment jobs)
    assert (await client.post("/_emulator/reset")).status == 200
    assert (await client.post(SCENARIOS, data=f"name: one-more\n{STEPS}".encode())).status == 201


async def test_uploaded_scenarios_have_a_byte_budget(client: TestClient[Any, Any]) -> None:
    """Each upload may be MAX_SCENARIO_BYTES; together they may hold MAX_UPLOADED_SCENARIO_BYTES."""
    padding = "x" * (MAX_SCENARIO_BYTES - 1000)
    fits = MAX_UPLOADED_SCENARIO_BYTES // MAX_SCENARIO_BYTES
    for index in range(fits):
        response = await client.post(SCENARIOS, data=f"name: big-{index}\ndescription: {padding}\n{STEPS}")
        assert response.status == 201, await response.text()
    refused = await client.post(SCENARIOS, data=f"name: big-more\ndescription: {padding}\n{STEPS}")
    body = await refused.json()
    assert refused.status == 409, body
    assert_matches("error.problem", body)
    assert f"at most {MAX_UPLOADED_SCENARIO_BYTES} bytes of documents in all" in body["detail"]
    # Replacing one with a smaller document frees its bytes.
    assert (await client.post(SCENARIOS, data=f"name: big-0\n{STEPS}")).status == 201
    again = await client.post(SCENARIOS, data=f"name: big-more\ndescription: {padding}\n{STEPS}")
    assert again.status == 201


def test_a_state_file_with_more_uploaded_scenarios_than_the_cap_is_refused() -> None:
    backend = Backend(Options(clock="manual"))
    state = backend.state()
    text = with_steps("")
    state["scenarios"]["uploaded"] = [
        {"name": f"up-{index}", "source": "upload", "text": text.replace("hostile", f"up-{index}")}
        for index in range(MAX_UPLOADED_SCENARIOS + 1)
    ]
    with pytest.raises(StateError, match=f"At most {MAX_UPLOADED_SCENARIOS} scenarios can be uploaded"):
        backend.restore(state, source="state.json")


async def test_an_upload_read_across_a_reset_does_not_land_after_it(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scenario is read off the event loop; a reset meanwhile is a boundary the upload does not cross."""
    reading, release = threading.Event(), threading.Event()
    real = control.parse_text

    def held(text: str, **kwargs: Any) -> Any:
        reading.set()
        release.wait(TIMEOUT)
        return real(text, **kwargs)

    monkeypatch.setattr(control, "parse_text", held)
    upload = asyncio.ensure_future(client.post(SCENARIOS, data=f"name: before-reset\n{STEPS}"))
    assert await asyncio.to_thread(reading.wait, TIMEOUT)
    assert (await client.post("/_emulator/reset")).status == 200
    release.set()
    response = await upload
    body = await response.json()
    assert response.status == 409, body
    assert "reset while the scenario was being read" in body["detail"]
    listed = await (await client.get(SCENARIOS)).json()
    assert "before-reset" not in {s["name"] for s in listed["scenarios"]}
