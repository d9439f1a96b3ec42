"""The command line as a first-time user meets it: usage, version, help, pipes, scenario listing and errors.

Run as users run it (`python -m emulator` in a subprocess); nothing sleeps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emulator import __version__
from emulator.cli_flags import SERVE_FLAGS
from tests.cli.test_cli import (
    BAD_STATUS,
    BUNDLED,
    GOOD_SCENARIO,
    TIMEOUT,
    Start,
    clean_env,
    one_error_line,
    run,
    start,  # noqa: F401  (the fixture)
)

COMMANDS = ("serve", "scenarios", "openapi")
REPLACEMENT = """\
description: my own failure
steps:
  - status: NEW
  - status: FAILED
    after: {polls: 1}
"""


def commands_listed(stdout: str) -> set[str]:
    return {line.split()[0] for line in stdout.splitlines() if re.match(r"    [a-z]+  ", line)}


def test_the_bare_command_prints_its_usage_with_the_commands() -> None:
    result = run(env=clean_env(COLUMNS="200"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: aep-emulator")
    assert commands_listed(result.stdout) == set(COMMANDS)
    assert result.stderr == ""


def test_a_command_without_its_subcommand_prints_its_usage() -> None:
    result = run("scenarios", env=clean_env(COLUMNS="200"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: aep-emulator scenarios")
    assert commands_listed(result.stdout) == {"validate", "list"}


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"aep-emulator {__version__}\n"


def test_every_serve_flag_shows_its_default_and_variable() -> None:
    result = run("serve", "--help", env=clean_env(COLUMNS="200"))
    assert result.returncode == 0, result.stderr
    helps: dict[str, str] = {}  # each flag's lines, joined
    flag = ""
    for line in result.stdout.split("options:\n", 1)[1].splitlines():
        match = re.match(r"  (-[-a-z]+)", line)
        if match:
            flag = match.group(1)
            helps[flag] = ""
        helps[flag] += " " + line.strip()
    helps.pop("-h")
    assert set(helps) == {flag.name for flag in SERVE_FLAGS}
    for flag in SERVE_FLAGS:
        assert re.search(rf"\(default: [^;]+; env {flag.env}\)$", helps[flag.name]), helps[flag.name]
    assert "(default: 8080; env AEP_EMULATOR_PORT)" in helps["--port"]
    assert "(default: WARNING; env AEP_EMULATOR_LOG_LEVEL)" in helps["--log-level"]


@pytest.mark.parametrize("indent", [None, "--indent", "4"])
def test_openapi_prints_one_document_compact_or_indented(indent: str | None) -> None:
    args = [] if indent is None else ["--indent"] if indent == "--indent" else ["--indent", indent]
    result = run("openapi", *args)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["openapi"].startswith("3.1")
    lines = result.stdout.splitlines()
    if indent is None:
        assert len(lines) == 1
    else:
        width = 2 if indent == "--indent" else int(indent)
        assert lines[1].startswith(" " * width + '"') and not lines[1].startswith(" " * (width + 1))
        assert document == json.loads(run("openapi").stdout)


@pytest.mark.parametrize("args", [["openapi"], ["scenarios", "list"]], ids=["openapi", "scenarios-list"])
def test_a_reader_that_went_away_is_no_error(args: list[str]) -> None:
    """`| head`: the reader closes the pipe before the command writes; a closed read end makes it certain."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "emulator", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
            env=clean_env(),
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0
    assert result.stderr == ""


@pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("head") is None, reason="needs bash and head"
)
@pytest.mark.parametrize(
    "pipeline", ["openapi | head -c 1", "scenarios list | head -1"], ids=["openapi", "scenarios-list"]
)
def test_pipes_as_users_write_them(pipeline: str) -> None:
    command, reader = pipeline.split(" | ")
    script = f"set -o pipefail; '{sys.executable}' -m emulator {command} | {reader} >/dev/null"
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=TIMEOUT, env=clean_env()
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def rows(stdout: str) -> dict[str, list[str]]:
    return {line.split("\t")[0]: line.split("\t")[1:] for line in stdout.splitlines()}


def test_scenarios_list_takes_paths(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(GOOD_SCENARIO)
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "two.yaml").write_text(GOOD_SCENARIO)
    result = run("scenarios", "list", str(tmp_path / "one.yaml"), str(folder))
    assert result.returncode == 0, result.stderr
    listed = rows(result.stdout)
    assert set(listed) == BUNDLED | {"one", "two"}
    assert listed["two"] == [str(folder / "two.yaml"), "a scenario for the CLI tests"]
    assert result.stderr == ""


def test_a_user_scenario_replaces_the_bundled_one_in_scenarios_list(tmp_path: Path) -> None:
    mine = tmp_path / "failure.yaml"
    mine.write_text(REPLACEMENT)
    result = run("scenarios", "list", str(mine))
    assert result.returncode == 0, result.stderr
    listed = rows(result.stdout)
    assert set(listed) == BUNDLED
    assert listed["failure"] == [str(mine), "my own failure"]
    assert result.stderr == f"aep-emulator: notice: scenario 'failure' from {mine} replaces the bundled one\n"


def test_a_user_scenario_replaces_the_bundled_one_in_serve(start: Start, tmp_path: Path) -> None:  # noqa: F811
    mine = tmp_path / "failure.yaml"
    mine.write_text(REPLACEMENT)
    server = start("--port", "0", "--scenarios", str(mine))
    _, listed = server.request("GET", "/_emulator/scenarios", "control.scenarios.response")
    by_name = {s["name"]: s for s in listed["scenarios"]}
    assert set(by_name) == BUNDLED
    assert by_name["failure"]["description"] == "my own failure"
    assert server.stop(signal.SIGTERM) == 0
    _, stderr = server.process.communicate(timeout=TIMEOUT)
    assert stderr == f"aep-emulator: notice: scenario 'failure' from {mine} replaces the bundled one\n"


def test_serve_and_validate_report_a_missing_file_alike(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    served = one_error_line(run("serve", "--port", "0", "--scenarios", str(missing)))
    validated = one_error_line(run("scenarios", "validate", str(missing)))
    assert served == validated == f"aep-emulator: error: {missing}: <document>: no such file or folder"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xff\xfe\x00", "cannot read"),
        (b"", "is not of type 'object'"),
        (b"[1, 2]\n", "is not of type 'object'"),
        (b"[" * 5000 + b"]" * 5000, "nests too deeply"),
        (b"a: " + b"{b: " * 3000 + b"1" + b"}" * 3000, "nests too deeply"),
    ],
    ids=["binary", "empty", "a-list", "deep-lists", "deep-maps"],
)
def test_scenarios_validate_gives_one_line_for_any_bad_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    line = one_error_line(run("scenarios", "validate", str(bad)))
    assert str(bad) in line
    assert reason in line


def test_scenarios_validate_uses_the_loader_of_serve(tmp_path: Path) -> None:
    """A folder is read as `serve --scenarios` reads it; names that would clash in one serve are refused."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "good.yaml").write_text(GOOD_SCENARIO)
    (folder / "notes.txt").write_text("not a scenario")
    (folder / "bad.yml").write_text(BAD_STATUS)
    line = one_error_line(run("scenarios", "validate", str(folder)))
    assert str(folder / "bad.yml") in line
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "good.yaml").write_text(GOOD_SCENARIO)
    (folder / "bad.yml").unlink()
    result = run("scenarios", "validate", str(folder), str(twin))
    assert result.stdout == f"ok {folder / 'good.yaml'} (good)\nok {twin / 'good.yaml'} (good)\n"
    assert "scenario 'good' is already defined" in one_error_line(result)


def test_an_empty_variable_counts_as_unset(start: Start) -> None:  # noqa: F811
    server = start("--port", "0", env=clean_env(AEP_EMULATOR_CLOCK="", AEP_EMULATOR_SEED=""))
    _, clock = server.request("GET", "/_emulator/clock", "control.clock.response")
    assert clock["mode"] == "real"
    assert server.stop(signal.SIGTERM) == 0


def test_an_unknown_default_scenario_names_where_it_came_from() -> None:
    from_flag = one_error_line(run("serve", "--port", "0", "--default-scenario", "nope"))
    assert from_flag.startswith("aep-emulator: error: argument --default-scenario: Unknown scenario 'nope'")
    from_env = one_error_line(
        run("serve", env=clean_env(AEP_EMULATOR_PORT="0", AEP_EMULATOR_DEFAULT_SCENARIO="nope"))
    )
    assert "environment variable AEP_EMULATOR_DEFAULT_SCENARIO: Unknown scenario 'nope'" in from_env
