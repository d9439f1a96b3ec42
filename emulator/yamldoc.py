"""YAML documents the emulator reads (scenarios, the credentials file): loading, and naming a place in one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

# libyaml's parser when PyYAML was built with it: 9x faster, which is most of loading the bundled scenarios
# at every start. The same constructor builds the values; errors are worded by the pure-Python parser.
_LIBYAML_LOADER = getattr(yaml, "CSafeLoader", None)


def load(text: str) -> Any:
    """The document in `text` (JSON is YAML too), with safe types only; yaml.YAMLError when it is not YAML."""
    if _LIBYAML_LOADER is not None:
        try:
            return yaml.load(text, Loader=_LIBYAML_LOADER)
        except yaml.YAMLError:
            pass  # parse again below: the same error, in the words the emulator has always used
    return yaml.safe_load(text)


def error_location(error: yaml.YAMLError) -> str:
    """Where a YAML error is, as "line L, column C" (1-based); empty when the error does not say."""
    mark = getattr(error, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def path(parts: Iterable[Any]) -> str:
    """A path inside a document as its author would write it: `steps[0].after.polls`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
