"""YAML documents the emulator reads (scenarios, the credentials file): loading, checking that a document is
plain JSON data, and naming a place in one."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date
from typing import Any

import yaml

# libyaml's parser when PyYAML was built with it: 9x faster, which is most of loading the bundled scenarios
# at every start. The same constructor builds the values; errors are worded by the pure-Python parser.
_LIBYAML_LOADER = getattr(yaml, "CSafeLoader", None)


class NestsTooDeeply(yaml.YAMLError):
    """A document nested past what the parser can walk (libyaml stops at 1,000 levels, the pure-Python
    parser at Python's recursion limit)."""

    problem = "the document nests too deeply"

    def __str__(self) -> str:
        return self.problem


def load(text: str) -> Any:
    """The document in `text` (JSON is YAML too), with safe types only; yaml.YAMLError when it is not YAML
    (`NestsTooDeeply` when it nests past what the parser walks)."""
    if _LIBYAML_LOADER is not None:
        try:
            return yaml.load(text, Loader=_LIBYAML_LOADER)
        except yaml.YAMLError as exc:
            if "maximum nesting depth" in str(getattr(exc, "problem", "")):
                raise NestsTooDeeply() from None  # the pure-Python parser would take a second to say so
            # Otherwise parse again below: the same error, in the words the emulator has always used.
    try:
        return yaml.safe_load(text)
    except RecursionError:
        # `[[[[...` 5,000 deep: the pure-Python composer recurses once per level.
        raise NestsTooDeeply() from None


def plain_data_problem(document: Any, *, max_values: int, max_depth: int) -> tuple[str, str] | None:
    """(path, reason) of the first place where `document` is not plain JSON data, or None.

    Plain: mappings with string keys, lists, strings, booleans, null, integers and finite floats; at most
    `max_values` values (keys count, and so does every expansion of a YAML alias: a few hundred bytes of
    nested aliases would otherwise expand to billions) and at most `max_depth` levels. The walk is
    iterative and stops at the first problem, so no document can make it recurse or run long."""
    # Each entry: (value, depth, where), where = (parent's where, key or index) or None for the root.
    pending: list[tuple[Any, int, Any]] = [(document, 0, None)]
    seen = 0
    while pending:
        value, depth, where = pending.pop()
        seen += 1
        if seen > max_values:
            return "", f"the document expands to more than {max_values} values (nested YAML aliases?)"
        if depth > max_depth:
            return _unwind(where), f"nests deeper than {max_depth} levels"
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    reason = f"a key must be a string, not {_kind(key)}; quote it"
                    return _unwind((where, _shown(key))), reason
                if not _is_unicode(key):
                    return _unwind(where), f"key {key!r} holds a lone surrogate (not Unicode text)"
                pending.append((item, depth + 1, (where, key)))
            seen += len(value)
        elif isinstance(value, list):
            pending.extend((item, depth + 1, (where, index)) for index, item in enumerate(value))
        elif isinstance(value, str):
            if not _is_unicode(value):
                return _unwind(where), "the text holds a lone surrogate (a \\uD800-\\uDFFF escape)"
        elif isinstance(value, float):
            if math.isnan(value):
                return _unwind(where), ".nan is not a number"
            if math.isinf(value):
                reason = f"{_shown(value)} is not a finite number (past 1.8e308, 1.0e+400 reads as .inf)"
                return _unwind(where), reason
        elif not isinstance(value, int | None):  # bool is an int
            return _unwind(where), f"{_kind(value)} is not JSON data; quote it to make it a string"
    return None


def _is_unicode(text: str) -> bool:
    """Whether `text` encodes to UTF-8 (a YAML "\\uD800" escape makes a lone surrogate, which does not)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: Any) -> str:
    """What a YAML author wrote, in their words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({_shown(value)})"
    if isinstance(value, int | float):
        return f"a number ({_shown(value)})"
    if isinstance(value, date):  # datetime too
        return f"a YAML timestamp ({value.isoformat()})"
    if isinstance(value, bytes):
        return "YAML !!binary"
    if isinstance(value, set):
        return "a YAML !!set"
    if isinstance(value, tuple):
        return "a YAML !!omap or !!pairs entry"
    return f"a YAML {type(value).__name__}"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return "null" if value is None else str(value)


def _unwind(where: Any) -> str:
    parts: list[Any] = []
    while where is not None:
        where, part = where
        parts.append(part)
    return path(reversed(parts))


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
