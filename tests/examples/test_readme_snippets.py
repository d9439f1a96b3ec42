"""The README's Python snippets, run as written (only the base URL is the fixture's), so they cannot rot."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def block_containing(marker: str) -> str:
    matches = [block for block in python_blocks() if marker in block]
    assert len(matches) == 1, f"expected one README snippet with {marker!r}"
    return matches[0]


@pytest.mark.aep_scenario("stuck")
def test_the_stuck_job_snippet_passes(aep_emulator: Any) -> None:
    namespace: dict[str, Any] = {}
    exec(block_containing("def test_a_stuck_export_is_cancelled"), namespace)
    namespace["test_a_stuck_export_is_cancelled"](aep_emulator)


def test_the_download_snippet_reads_rows(aep_emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    snippet = block_containing("print(name, len(rows)").replace(
        '"http://127.0.0.1:8080"', repr(aep_emulator.url)
    )
    exec(snippet, {})
    printed = capsys.readouterr().out.splitlines()
    assert printed and all(int(line.split()[1]) > 0 for line in printed)


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_quickstart_test_is_the_readme_snippet() -> None:
    snippet = block_containing("def test_profile_export_succeeds")
    assert snippet in (README.parent / "tests" / "examples" / "test_quickstart.py").read_text(
        encoding="utf-8"
    )


def test_the_runtime_dependencies_are_those_of_pyproject() -> None:
    declared = tomllib.loads((README.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=!~ ;\[]", spec, maxsplit=1)[0].lower() for spec in declared["dependencies"]}
    line = re.search(r"Runtime dependencies: (.*)\.\n", README.read_text(encoding="utf-8"))
    assert line is not None
    assert {name.strip().lower() for name in line.group(1).split(",")} == names


def test_the_options_snippet_finds_its_scenarios_from_any_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `aep_emulator_options` override in a project's conftest.py; pytest run from another folder."""
    tests = pytester.mkdir("project") / "tests"
    (tests / "scenarios").mkdir(parents=True)
    (tests / "conftest.py").write_text(block_containing("def aep_emulator_options"))
    (tests / "scenarios" / "never-ends.yaml").write_text("description: stays NEW\nsteps:\n  - status: NEW\n")
    (tests / "test_mine.py").write_text(
        "def test_my_scenario_is_known(aep_emulator):\n    aep_emulator.use_scenario('never-ends')\n"
    )
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider -p no:xdist\n")
    monkeypatch.chdir(pytester.mkdir("elsewhere"))
    result = pytester.run(sys.executable, "-m", "pytest", str(tests))
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*1 passed*"])


async def test_the_aiohttp_client_snippet_passes(aiohttp_client: Any, aep_emulator_app: Any) -> None:
    namespace: dict[str, Any] = {}
    exec(block_containing("aiohttp_client(aep_emulator_app)"), namespace)
    await namespace["test_datasets_in_process"](aiohttp_client, aep_emulator_app)


def test_the_unittest_snippet_passes(tmp_path: Path) -> None:
    (tmp_path / "test_with_unittest.py").write_text(block_containing("import unittest"))
    result = subprocess.run(
        [sys.executable, "-m", "unittest", "-v", "test_with_unittest"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Ran 1 test" in result.stderr and "OK" in result.stderr


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs bash and curl"
)
@pytest.mark.parametrize(
    "marker", ["# 1. a dataset", "the next job follows", "$AEP_URL/_emulator/clock/advance"]
)
def test_the_curl_snippets_work_as_pasted(marker: str, aep_emulator: Any, tmp_path: Path) -> None:
    """Each curl snippet against the fixture's server (the snippets' 127.0.0.1:8080 is its address): every
    curl must get a 2xx (`--fail-with-body`), every command must succeed."""
    [snippet] = [block for block in bash_blocks() if marker in block]
    script = (
        "set -euo pipefail\n"
        'curl() { command curl --silent --show-error --fail-with-body "$@"; }\n'
        + snippet.replace("http://127.0.0.1:8080", aep_emulator.url)
    )
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if marker == "the next job follows":
        assert '"status": "FAILED"' in result.stdout
        assert [job["job"]["status"] for job in aep_emulator.jobs()] == ["FAILED", "FAILED"]


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs bash and curl"
)
def test_the_standalone_server_snippet_works_as_pasted() -> None:
    """`aep-emulator serve --port 8080 &`, wait, run the walkthrough script (on a free port, not 8080)."""
    [snippet] = [block for block in bash_blocks() if "aep-emulator serve --port 8080 &" in block]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = f"set -euo pipefail\n{snippet.replace('8080', str(port))}\nkill %1\nwait\n"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # this venv's aep-emulator
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=README.parent,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
