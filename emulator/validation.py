"""JSON Schemas from `schemas/`, loaded and compiled once; failures become AEP 400s naming the path."""

from __future__ import annotations

import json
import logging
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from emulator.errors import BadRequest
from emulator.resources import bundled_dir

SCHEMA_SUFFIX = ".schema.json"
log = logging.getLogger("emulator.validation")
# Each lenient pass drops at least one value; a document needing more passes than this is refused.
MAX_LENIENT_PASSES = 100

JsonPath = tuple[str | int, ...]


class Schemas:
    """Every schema file by name (`export-job.create.request` for `export-job.create.request.schema.json`)."""

    def __init__(self, folder: Path):
        self.documents: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.glob(f"*{SCHEMA_SUFFIX}")):
            self.documents[path.name.removesuffix(SCHEMA_SUFFIX)] = json.loads(path.read_text())
        self.registry: Registry[Any] = Registry().with_resources(
            (doc["$id"], Resource.from_contents(doc)) for doc in self.documents.values()
        )
        self._validators = {
            name: Draft202012Validator(
                doc, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            for name, doc in self.documents.items()
        }

    def errors(self, name: str, instance: Any) -> list[str]:
        """Every violation, each as `<json path>: <message> (rule: <keyword>)`."""
        return [describe(e) for e in self._validators[name].iter_errors(instance)]

    def first_error(self, name: str, instance: Any) -> ValidationError | None:
        """The most relevant violation, or None when `instance` is valid."""
        error: ValidationError | None = best_match(self._validators[name].iter_errors(instance))
        return error

    def check(self, name: str, instance: Any, *, what: str = "request body", lenient: bool = False) -> Any:
        """`instance` if valid; else (strict) a 400 naming the most relevant failing path and rule.

        Lenient: each violation is logged and the value that breaks the schema is dropped, as if the client
        had not sent it (an unknown enum value, an optional field of the wrong type, an unknown key where
        none are allowed). What is still invalid without it, such as a missing required field, is the same
        400 as in strict mode. Returns the (possibly reduced) instance.
        """
        first: list[ValidationError] = []
        dropped: list[ValidationError] = []
        for _ in range(MAX_LENIENT_PASSES if lenient else 1):
            errors = list(self._validators[name].iter_errors(instance))
            if not errors:
                for error in dropped:
                    log.warning("lenient validation of %s: dropped %s", name, describe(error))
                return instance
            first = first or errors
            drops = [_droppable(error) for error in errors] if lenient else [None]
            if any(paths is None for paths in drops):
                break
            dropped.extend(errors)
            for path in sorted({p for paths in drops for p in paths or ()}, key=_sort_key, reverse=True):
                _delete(instance, path)
        # Refused: with the message strict mode gives, about what the client sent.
        raise BadRequest(f"Invalid {what}: {describe(best_match(first))}")


def describe(error: ValidationError) -> str:
    return f"{error.json_path}: {error.message} (rule: {error.validator})"


def _droppable(error: ValidationError) -> list[JsonPath] | None:
    """What to drop to get past `error` leniently; None when dropping cannot help (the domain needs it)."""
    path: JsonPath = tuple(error.absolute_path)
    if error.validator == "required":
        return None
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        known = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        return [
            (*path, key)
            for key in error.instance
            if key not in known and not any(re.search(p, key) for p in patterns)
        ]
    return [path] if path else None


def _sort_key(path: JsonPath) -> list[tuple[int, int | str]]:
    """Deepest first, and the last item of a list first, so that each deletion leaves the others valid."""
    return [(0, part) if isinstance(part, int) else (1, part) for part in path]


def _delete(document: Any, path: JsonPath) -> None:
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]


@cache
def bundled_schemas() -> Schemas:
    return Schemas(bundled_dir("schemas"))
