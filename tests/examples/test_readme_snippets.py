"""The README's Python snippets, run as written (only the base URL is the fixture's), so they cannot rot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

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
    snippet = block_containing("pq.read_table").replace('"http://127.0.0.1:8080"', repr(aep_emulator.url))
    exec(snippet, {})
    printed = capsys.readouterr().out.splitlines()
    assert printed and all(int(line.split()[1]) > 0 for line in printed)
