"""JSON Schemas from `schemas/`, loaded and compiled once; failures become AEP 400s naming the path."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.errors import SchemaViolation
from emulator.resources import bundled_dir

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_SUFFIX = ".schema.json"
log = logging.getLogger("emulator.validation")
# A lenient request's log line names up to this many of the values it dropped, then counts the rest.
LENIENT_LOG_EXAMPLES = 10
# Each lenient pass drops at least one value; a document needing more passes than this is refused.
MAX_LENIENT_PASSES = 100

JsonPath = tuple[str | int, ...]

# What the fast pre-check (jsonschema-rs, compiled in Rust, with draft-07 rules) applies exactly as
# jsonschema applies draft 2020-12 to parsed JSON, with the exceptions `_fast_schema` rules out or
# rewrites; other keywords (annotations aside) mean the schema is checked by jsonschema alone. It once
# was fastjsonschema, whose limits the rules still keep: it ignored `$ref`'s siblings and compared `enum`
# and `const` with ==, which equates 1, 1.0 and true.
FAST_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems", "enum", "const",
        "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "uniqueItems", "pattern",
        "minProperties", "maxProperties", "anyOf", "not",
    }
)  # fmt: skip
# `default` too: the pre-check never fills defaults in.
ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "examples", "default"})
# Regular expression classes whose members differ between Python's `re` (jsonschema's) and Rust's regex
# (the pre-check's): Python's `\s` also holds the ASCII separators \x1c-\x1f, and `\w` and `\b` follow
# from different Unicode tables. A `pattern` using one is checked by jsonschema alone. The rest of the
# dialect differs only where Rust is the stricter (an ASCII `\d`, `$` only at the very end), and a
# refusal of the pre-check is only ever "ask jsonschema".
UNPORTABLE_PATTERN = re.compile(r"\\[sSwWbB]")


class Schemas:
    """Every schema file by name (`export-job.create.request` for `export-job.create.request.schema.json`)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._validators: dict[str, Draft202012Validator] = {}
        self._fast: dict[str, Callable[[Any], bool] | None] = {}

    @cached_property
    def documents(self) -> dict[str, dict[str, Any]]:
        """The files, read on first use: a start that has checked nothing yet has read none of them."""
        return {
            path.name.removesuffix(SCHEMA_SUFFIX): json.loads(path.read_text())
            for path in sorted(self.folder.glob(f"*{SCHEMA_SUFFIX}"))
        }

    def validator(self, name: str) -> Draft202012Validator:
        """jsonschema's validator, built on first use: importing jsonschema would cost every start ~30 ms,
        and a run that gets only valid documents never needs it (see `_fast_valid`)."""
        if not self._validators:
            from jsonschema import Draft202012Validator
            from referencing import Registry, Resource

            registry: Registry[Any] = Registry().with_resources(
                (doc["$id"], Resource.from_contents(doc)) for doc in self.documents.values()
            )
            self._validators = {
                name: Draft202012Validator(
                    doc, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
                )
                for name, doc in self.documents.items()
            }
        return self._validators[name]

    def errors(self, name: str, instance: Any) -> list[str]:
        """Every violation, each as `<json path>: <message> (rule: <keyword>)`."""
        return [describe(e) for e in self.validator(name).iter_errors(instance)]

    def first_error(self, name: str, instance: Any) -> ValidationError | None:
        """The most relevant violation, or None when `instance` is valid."""
        if self._fast_valid(name, instance):
            return None
        from jsonschema.exceptions import best_match

        error: ValidationError | None = best_match(self.validator(name).iter_errors(instance))
        return error

    def check(self, name: str, instance: Any, *, what: str = "request body", lenient: bool = False) -> Any:
        """`instance` if valid; else (strict) a 400 naming the most relevant failing path and rule.

        Lenient: each violation is logged and the value that breaks the schema is dropped, as if the client
        had not sent it (an unknown enum value, an optional field of the wrong type, an unknown key where
        none are allowed). What is still invalid without it, such as a missing required field, is the same
        400 as in strict mode. Returns the (possibly reduced) instance.
        """
        if self._fast_valid(name, instance):
            return instance
        first: list[ValidationError] = []
        dropped: list[ValidationError] = []
        for _ in range(MAX_LENIENT_PASSES if lenient else 1):
            errors = list(self.validator(name).iter_errors(instance))
            if not errors:
                if dropped:  # one line per request, however many values went
                    shown = "; ".join(describe(error) for error in dropped[:LENIENT_LOG_EXAMPLES])
                    more = len(dropped) - LENIENT_LOG_EXAMPLES
                    log.warning(
                        "lenient validation of %s: dropped %d value(s): %s%s",
                        name,
                        len(dropped),
                        shown,
                        f"; and {more} more" if more > 0 else "",
                    )
                return instance
            first = first or errors
            drops = [_droppable(error) for error in errors] if lenient else [None]
            if any(paths is None for paths in drops):
                break
            dropped.extend(errors)
            for path in sorted({p for paths in drops for p in paths or ()}, key=_sort_key, reverse=True):
                _delete(instance, path)
        from jsonschema.exceptions import best_match

        # Refused: with the message strict mode gives, about what the client sent.
        raise violation(f"Invalid {what}", best_match(first))

    def _fast_valid(self, name: str, instance: Any) -> bool:
        """True when the compiled pre-check accepts `instance`: jsonschema would accept it too (10-100x
        slower). False means "ask jsonschema", which alone decides and words every refusal."""
        if name not in self._fast:
            self._fast[name] = _compile_fast(self.documents[name], self.documents)
        valid = self._fast[name]
        return valid is not None and valid(instance)


def _compile_fast(
    schema: dict[str, Any], documents: dict[str, dict[str, Any]]
) -> Callable[[Any], bool] | None:
    inlined = _fast_schema(schema, schema, documents, frozenset())
    if inlined is None:
        return None
    import jsonschema_rs  # on first use: a run that validates nothing never needs it

    try:
        # `inlined` has no references left and draft-07's array keywords (see `_fast_schema`).
        valid: Callable[[Any], bool] = jsonschema_rs.Draft7Validator(inlined, validate_formats=False).is_valid
        return valid
    except Exception:  # whatever it cannot compile, jsonschema checks alone
        log.debug("no fast pre-check for %s", schema.get("$id"), exc_info=True)
        return None


def _fast_schema(
    schema: Any, root: dict[str, Any], documents: dict[str, dict[str, Any]], expanding: frozenset[str]
) -> Any:
    """`schema` for the pre-check, or None if it (or what it refers to) uses what the pre-check would get
    wrong. References to `$defs` are inlined (2.5x faster to check than calls through references) and
    `prefixItems` becomes draft-07's `items` list."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict) or not schema.keys() <= FAST_KEYWORDS | ANNOTATIONS | {"$ref"}:
        return None
    if "$ref" in schema:
        ref = str(schema["$ref"])
        file, _, name = ref.partition("#/$defs/")
        target_root = documents.get(file.removesuffix(SCHEMA_SUFFIX)) if file else root
        target = (target_root.get("$defs", {}).get(name) if name else target_root) if target_root else None
        if ref in expanding or not schema.keys() <= ANNOTATIONS | {"$ref"} or target_root is None:
            return None
        return _fast_schema(target, target_root, documents, expanding | {ref})
    if "pattern" in schema and UNPORTABLE_PATTERN.search(str(schema["pattern"])):
        return None
    inlined = {key: value for key, value in schema.items() if key in FAST_KEYWORDS}
    if "const" in inlined:  # a one-value enum, so that the rules below cover both
        inlined["enum"] = [inlined.pop("const"), *inlined.get("enum", [])]
    values = inlined.get("enum", [])
    booleans = values and all(isinstance(value, bool) for value in values)
    if booleans and schema.get("type", "boolean") == "boolean":
        inlined["type"] = "boolean"  # so that 1 and 0, equal to true and false in Python, are refused
    elif not all(value is None or isinstance(value, str) for value in values):
        return None

    def sub(child: Any) -> Any:
        found = _fast_schema(child, root, documents, expanding)
        if found is None:
            raise LookupError
        return found

    try:
        if "properties" in schema:
            inlined["properties"] = {key: sub(value) for key, value in schema["properties"].items()}
        for key in ("additionalProperties", "not"):
            if key in schema:
                inlined[key] = sub(schema[key])
        if "anyOf" in schema:
            inlined["anyOf"] = [sub(value) for value in schema["anyOf"]]
        if "prefixItems" in schema:
            inlined["items"] = [sub(value) for value in inlined.pop("prefixItems")]
            if "items" in schema:
                inlined["additionalItems"] = sub(schema["items"])
        elif "items" in schema:
            inlined["items"] = sub(schema["items"])
    except LookupError:
        return None
    return inlined


def violation(what: str, error: ValidationError) -> SchemaViolation:
    """The 400 for `error`, with what a near-miss hint needs to suggest the field the client meant."""
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    present = tuple(str(key) for key in instance) if isinstance(instance, dict) else ()
    known = tuple(schema.get("properties", {}))
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    if error.validator == "required" and isinstance(error.validator_value, list):
        missing = tuple(str(key) for key in error.validator_value if key not in present)
    elif error.validator == "additionalProperties":
        patterns = schema.get("patternProperties", {})
        unexpected = tuple(
            key for key in present if key not in known and not any(re.search(p, key) for p in patterns)
        )
    return SchemaViolation(
        f"{what}: {describe(error)}",
        json_path=error.json_path,
        rule=str(error.validator),
        message=error.message,
        present=present,
        known=known,
        missing=missing,
        unexpected=unexpected,
    )


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
