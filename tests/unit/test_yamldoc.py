"""The YAML helpers shared by scenarios and the credentials file."""

from __future__ import annotations

import pytest
import yaml

from emulator import yamldoc


def test_a_path_inside_a_document_reads_as_its_author_writes_it() -> None:
    assert yamldoc.path([]) == ""
    assert yamldoc.path(["steps"]) == "steps"
    assert yamldoc.path(["steps", 0, "after", "polls"]) == "steps[0].after.polls"
    assert yamldoc.path([2, "code"]) == "[2].code"


def test_an_error_names_its_line_and_column() -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        yamldoc.load("name: a\nsteps: [\n")
    assert yamldoc.error_location(caught.value).startswith("line 3, column ")
    assert yamldoc.error_location(yaml.YAMLError("no mark")) == ""


def test_load_gives_safe_types_only() -> None:
    assert yamldoc.load("a: [1, {b: c}]") == {"a": [1, {"b": "c"}]}
    assert yamldoc.load('{"json": true}') == {"json": True}
    with pytest.raises(yaml.YAMLError):
        yamldoc.load("!!python/object:os.system {}")
