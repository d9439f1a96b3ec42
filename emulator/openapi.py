"""The OpenAPI 3.1 document, built from `schemas/` and the route metadata in openapi.operations.yaml.

No schema is copied: each schema file becomes `components.schemas[<name>]`, with its `$ref`s rewritten to
point inside the document. The build fails (`OpenApiError`) when a route has no metadata, metadata names a
route the app does not serve, or metadata names a schema, parameter, header or response that does not exist.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any
from urllib.parse import urldefrag, urljoin

import yaml

from emulator import __version__
from emulator.jsonio import dumps
from emulator.resources import bundled_dir
from emulator.validation import Schemas, bundled_schemas

OPENAPI_VERSION = "3.1.0"
OPERATIONS_FILE = "openapi.operations.yaml"
JSON = "application/json"
SCHEMAS = "#/components/schemas/"
SECURITY: dict[str, list[dict[str, list[str]]]] = {"aep": [{"bearer": [], "apiKey": []}], "none": []}
_PATH_PARAMETER = re.compile(r"{([^}]+)}")

Route = tuple[str, str]


class OpenApiError(Exception):
    """The route metadata and the app (or the schemas) disagree."""


@cache
def load_metadata() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((bundled_dir("schemas") / OPERATIONS_FILE).read_text("utf-8"))
    return document


@cache
def document_bytes(routes: tuple[Route, ...]) -> bytes:
    """The document for these (method, path) routes as JSON, built once per route table."""
    return dumps(build(routes))


def build(
    routes: Iterable[Route], schemas: Schemas | None = None, metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    # A copy: the document must not share (mutable) parts with the cached metadata.
    meta = copy.deepcopy(dict(metadata or load_metadata()))
    return _Builder(schemas or bundled_schemas(), meta).build(list(routes))


class _Builder:
    def __init__(self, schemas: Schemas, metadata: Mapping[str, Any]):
        self.schemas = schemas
        self.meta = metadata
        self.parameters: dict[str, Any] = dict(metadata["parameters"])
        self.headers: dict[str, Any] = dict(metadata["headers"])
        self.responses: dict[str, Any] = dict(metadata["responses"])
        self.tags: dict[str, Any] = dict(metadata["tags"])
        self._ids = {doc["$id"]: name for name, doc in schemas.documents.items()}
        self._links: list[tuple[str, Mapping[str, Any]]] = []

    def build(self, routes: list[Route]) -> dict[str, Any]:
        operations: Mapping[str, Any] = self.meta["operations"]
        served = {f"{method} {path}" for method, path in routes}
        missing = sorted(served - operations.keys())
        unknown = sorted(operations.keys() - served)
        if missing or unknown:
            raise OpenApiError(
                f"{OPERATIONS_FILE} and the app's routes disagree: routes without metadata: "
                f"{missing or 'none'}; metadata for routes the app does not serve: {unknown or 'none'}"
            )
        paths: dict[str, dict[str, Any]] = {}
        for method, path in routes:
            paths.setdefault(path, {})[method.lower()] = self._operation(method, path)
        ids = [op["operationId"] for item in paths.values() for op in item.values()]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise OpenApiError(f"{OPERATIONS_FILE}: operationIds used twice: {duplicates}")
        for where, link in self._links:
            if link["operationId"] not in ids:
                raise OpenApiError(
                    f"{OPERATIONS_FILE}: {where} links to the unknown operation {link['operationId']}"
                )
        return {
            "openapi": OPENAPI_VERSION,
            "info": {**self.meta["info"], "version": __version__},
            "tags": [{"name": name, "description": tag["description"]} for name, tag in self.tags.items()],
            "paths": paths,
            "components": {
                "schemas": {name: self._component(name, doc) for name, doc in self.schemas.documents.items()},
                "parameters": self.parameters,
                "headers": {key: _without(spec, "name") for key, spec in self.headers.items()},
                # Shared responses are error responses (checked where they are used).
                "responses": {
                    key: self._response(key, spec, error=True) for key, spec in self.responses.items()
                },
                "securitySchemes": self.meta["securitySchemes"],
            },
        }

    # -- operations -----------------------------------------------------------------------------

    def _operation(self, method: str, path: str) -> dict[str, Any]:
        where = f"{method} {path}"
        meta = self.meta["operations"][where]
        tag = self._lookup(self.tags, meta["tag"], "tag", where)
        parameters = [*tag.get("parameters", []), *meta.get("parameters", [])]
        for name in parameters:
            self._lookup(self.parameters, name, "parameter", where)
        declared = {self.parameters[n]["name"] for n in parameters if self.parameters[n]["in"] == "path"}
        if declared != set(_PATH_PARAMETER.findall(path)):
            raise OpenApiError(f"{where}: path parameters {sorted(declared)} do not match the path")
        operation: dict[str, Any] = {
            "operationId": meta["operationId"],
            "summary": meta["summary"],
            "tags": [meta["tag"]],
        }
        if "description" in meta:
            operation["description"] = meta["description"]
        operation["security"] = SECURITY[tag["security"]]
        if parameters:
            operation["parameters"] = [{"$ref": f"#/components/parameters/{n}"} for n in parameters]
        if "requestBody" in meta:
            body = meta["requestBody"]
            operation["requestBody"] = {
                "required": body.get("required", True),
                "content": {media: self._media(spec, where) for media, spec in body["content"].items()},
            }
        statuses = {**tag.get("responses", {}), **meta["responses"]}
        head = method == "HEAD"
        operation["responses"] = {
            str(status): self._operation_response(spec, int(status), where, head)
            for status, spec in sorted(statuses.items())
        }
        return operation

    def _operation_response(self, spec: Any, status: int, where: str, head: bool) -> dict[str, Any]:
        if isinstance(spec, str):
            named = self._lookup(self.responses, spec, "response", where)
            if status < 400:
                raise OpenApiError(f"{OPERATIONS_FILE}: {where}: shared response '{spec}' used for {status}")
            if not head:
                return {"$ref": f"#/components/responses/{spec}"}
            spec = named
        if head:
            # A HEAD answer has headers only, whatever the status.
            spec = _without(_without(spec, "schema"), "example")
        return self._response(where, spec, error=status >= 400)

    def _response(self, where: str, spec: Mapping[str, Any], *, error: bool) -> dict[str, Any]:
        response: dict[str, Any] = {"description": spec["description"]}
        headers = list(spec.get("headers", []))
        if error:
            headers.insert(0, "xRequestId")  # the emulator sends it with every error
        if headers:
            response["headers"] = {}
            for key in headers:
                header = self._lookup(self.headers, key, "header", where)
                response["headers"][header["name"]] = {"$ref": f"#/components/headers/{key}"}
        content = dict(spec.get("content", {}))
        if "schema" in spec:
            content[JSON] = {
                "schema": spec["schema"],
                **({"example": spec["example"]} if "example" in spec else {}),
            }
        if content:
            response["content"] = {
                media: self._media(media_spec, where) for media, media_spec in content.items()
            }
        if "links" in spec:
            # How a client (or a stateful fuzzer) gets from this answer to the next call.
            response["links"] = spec["links"]
            self._links.extend((where, link) for link in spec["links"].values())
        return response

    def _media(self, spec: Mapping[str, Any], where: str) -> dict[str, Any]:
        media: dict[str, Any] = {}
        if "schema" in spec:
            media["schema"] = self._schema_ref(spec["schema"], where)
        if "example" in spec:
            media["example"] = spec["example"]
        return media

    def _schema_ref(self, schema: Any, where: str) -> dict[str, Any]:
        """A schema name, a list of names (any of them), or an inline schema for plain text bodies."""
        if isinstance(schema, dict):
            return schema
        if isinstance(schema, list):
            return {"anyOf": [self._schema_ref(name, where) for name in schema]}
        self._lookup(self.schemas.documents, schema, "schema", where)
        return {"$ref": SCHEMAS + schema}

    def _lookup(self, table: Mapping[str, Any], name: str, kind: str, where: str) -> Any:
        if name not in table:
            raise OpenApiError(f"{OPERATIONS_FILE}: {where} names the unknown {kind} '{name}'")
        return table[name]

    # -- schemas --------------------------------------------------------------------------------

    def _component(self, name: str, document: Mapping[str, Any]) -> Any:
        base = document["$id"]
        component = {k: v for k, v in document.items() if k not in ("$id", "$schema")}
        return self._rewrite(component, base, name)

    def _rewrite(self, node: Any, base: str, name: str) -> Any:
        """Every `$ref` (relative to the file's `$id`) becomes a pointer into components.schemas."""
        if isinstance(node, list):
            return [self._rewrite(item, base, name) for item in node]
        if not isinstance(node, dict):
            return node
        if "$id" in node:
            raise OpenApiError(f"schema '{name}': a nested $id is not supported")
        rewritten = {key: self._rewrite(value, base, name) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str):
            url, fragment = urldefrag(urljoin(base, ref))
            target = self._ids.get(url)
            if target is None or (fragment and not fragment.startswith("/")):
                raise OpenApiError(f"schema '{name}': cannot resolve $ref '{ref}'")
            rewritten["$ref"] = SCHEMAS + target + fragment
        return rewritten


def _without(spec: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != key}
