"""The README's audience-to-file flow, run as written: with requests (a test function in the README) and
with aepp (a function the README defines; aepp's module-level settings are restored afterwards)."""

from __future__ import annotations

import copy
from typing import Any

import aepp

from emulator.testing import AepEmulator
from tests.examples.test_readme_snippets import block_containing

_AEPP_SETTINGS = (aepp.config.config_object, aepp.config.header, aepp.config.endpoints)


def test_the_requests_flow_snippet_passes(aep_emulator: AepEmulator) -> None:
    namespace: dict[str, Any] = {}
    exec(block_containing("def test_an_audience_is_defined_evaluated_and_exported"), namespace)
    namespace["test_an_audience_is_defined_evaluated_and_exported"](aep_emulator)
    assert [job["kind"] for job in aep_emulator.jobs()] == ["export", "segment"]


def test_the_aepp_flow_snippet_passes(aep_emulator: AepEmulator) -> None:
    namespace: dict[str, Any] = {}
    exec(block_containing("def audience_to_file_with_aepp"), namespace)
    saved = [copy.deepcopy(settings) for settings in _AEPP_SETTINGS]
    try:
        namespace["audience_to_file_with_aepp"](aep_emulator)
    finally:
        for settings, original in zip(_AEPP_SETTINGS, saved, strict=True):
            settings.clear()
            settings.update(original)
    assert {job["kind"] for job in aep_emulator.jobs()} == {"export", "segment"}
