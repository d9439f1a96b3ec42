"""JSON Schemas from `schemas/`, loaded and compiled once; failures become AEP 400s naming the path."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from emulator.errors import BadRequest
from emulator.resources import bundled_dir

SCHEMA_SUFFIX = ".schema.json"


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

    def check(self, name: str, instance: Any, *, what: str = "request body") -> None:
        """Raise a 400 naming the most relevant failing path and rule."""
        error = self.first_error(name, instance)
        if error is not None:
            raise BadRequest(f"Invalid {what}: {describe(error)}")


def describe(error: ValidationError) -> str:
    return f"{error.json_path}: {error.message} (rule: {error.validator})"


@cache
def bundled_schemas() -> Schemas:
    return Schemas(bundled_dir("schemas"))
