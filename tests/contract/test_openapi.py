"""The OpenAPI document: valid OpenAPI 3.1, built from schemas/ (no copies), in step with the app's routes."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from emulator.app import DISPATCHER, ROUTES, create_app
from emulator.openapi import OpenApiError, build, load_metadata
from emulator.validation import bundled_schemas
from tests.conftest import assert_matches
from tests.contract.support import Contract, document

ROUTE_PAIRS = [(method, path) for method, path, _ in ROUTES]
SCHEMA_PREFIX = "#/components/schemas/"


def test_document_is_valid_openapi_3_1() -> None:
    doc = document()
    validate(doc)
    assert doc["openapi"].startswith("3.1.")
    assert_matches("control.openapi.response", doc)


def test_every_route_of_the_app_is_documented_and_nothing_else() -> None:
    served = set(create_app()[DISPATCHER].routes.templates)
    documented = {(method.upper(), path) for path, item in document()["paths"].items() for method in item}
    assert served == documented


async def test_served_document_is_the_built_one(client: TestClient[Any, Any]) -> None:
    response = await client.get("/_emulator/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    served = await response.json()
    assert_matches("control.openapi.response", served)
    assert served == document()
    again = await client.get("/_emulator/openapi.json")
    assert await again.read() == await response.read()  # built once, the same bytes every time


def test_cli_prints_the_document() -> None:
    script = Path(sys.executable).with_name("aep-emulator")
    run = subprocess.run([str(script), "openapi"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    assert_matches("control.openapi.response", printed)
    assert printed == document()


def test_components_are_the_schema_files_not_copies() -> None:
    components = document()["components"]["schemas"]
    files = bundled_schemas().documents
    assert set(components) == set(files)
    for name, component in components.items():
        original = {k: v for k, v in files[name].items() if k not in ("$id", "$schema")}
        assert _original_refs(component, name) == original, name


def _original_refs(node: Any, name: str) -> Any:
    """Undo the build's $ref rewriting: `#/components/schemas/X/...` back to `X.schema.json#/...`."""
    if isinstance(node, list):
        return [_original_refs(item, name) for item in node]
    if not isinstance(node, dict):
        return node
    undone = {key: _original_refs(value, name) for key, value in node.items()}
    if isinstance(node.get("$ref"), str):
        target, _, pointer = node["$ref"].removeprefix(SCHEMA_PREFIX).partition("/")
        fragment = f"#/{pointer}" if pointer else ""
        undone["$ref"] = fragment if target == name and pointer else f"{target}.schema.json{fragment}"
    return undone


def test_every_example_matches_its_schema() -> None:
    contract = Contract(document())
    checked = 0
    for path, item in document()["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            for media, spec in op.get("requestBody", {}).get("content", {}).items():
                if "example" in spec and "schema" in spec:
                    assert not contract.schema_errors(spec["schema"], spec["example"]), (
                        f"{where} request {media}"
                    )
                    checked += 1
            for status in op["responses"]:
                response = contract.response(op["operationId"], int(status))
                for media, spec in response.get("content", {}).items():
                    if "example" in spec:
                        errors = contract.schema_errors(spec["schema"], spec["example"])
                        assert not errors, f"{where} {status} {media}: {errors}"
                        checked += 1
    for name, parameter in document()["components"]["parameters"].items():
        if "example" in parameter:
            assert not contract.schema_errors(parameter["schema"], parameter["example"]), name
            checked += 1
    assert checked >= 40


def test_operations_carry_their_metadata() -> None:
    doc = document()
    tags = {tag["name"] for tag in doc["tags"]}
    ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ids.append(op["operationId"])
            assert op["summary"] and op["tags"][0] in tags, (method, path)
            refs = [p["$ref"].rsplit("/", 1)[1] for p in op.get("parameters", [])]
            if path.startswith("/data/"):
                assert op["security"] == [{"bearer": [], "apiKey": []}], path
                assert "org" in refs, path
            else:
                assert op["security"] == [], path
            for status, response in op["responses"].items():
                if int(status) >= 400 and "$ref" not in response:
                    assert "x-request-id" in response["headers"], (path, method, status)
    assert len(ids) == len(set(ids)) == len(ROUTES)


# -- the build fails loudly ------------------------------------------------------------------------


def test_a_route_without_metadata_fails_the_build() -> None:
    with pytest.raises(OpenApiError, match=r"routes without metadata: \['GET /data/new/thing'\]"):
        build([*ROUTE_PAIRS, ("GET", "/data/new/thing")])


def test_metadata_for_a_route_the_app_lacks_fails_the_build() -> None:
    with pytest.raises(OpenApiError, match=r"does not serve: \['GET /_emulator/health'\]"):
        build([route for route in ROUTE_PAIRS if route != ("GET", "/_emulator/health")])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda m: m["operations"]["GET /_emulator/health"]["responses"]["200"].update(schema="nope"),
            "schema 'nope'",
        ),
        (lambda m: m["operations"]["GET /_emulator/clock"].update(parameters=["nope"]), "parameter 'nope'"),
        (lambda m: m["operations"]["GET /_emulator/clock"].update(tag="nope"), "tag 'nope'"),
        (
            lambda m: m["operations"]["GET /_emulator/clock"]["responses"].update({"418": "nope"}),
            "response 'nope'",
        ),
        (
            lambda m: m["operations"]["GET /_emulator/clock"]["responses"]["200"].update(headers=["nope"]),
            "header 'nope'",
        ),
        (
            lambda m: m["operations"]["GET /_emulator/clock"]["responses"]["200"].update(
                links={"X": {"operationId": "nope"}}
            ),
            "unknown operation nope",
        ),
        (
            lambda m: m["operations"]["GET /data/core/ups/export/jobs/{job_id}"].update(parameters=[]),
            "path parameters",
        ),
        (
            lambda m: m["operations"]["GET /_emulator/clock"]["responses"].update(
                {"200": "controlBadRequest"}
            ),
            "shared response 'controlBadRequest' used for 200",
        ),
        (lambda m: m["operations"]["GET /_emulator/clock"].update(operationId="health"), "used twice"),
    ],
)
def test_broken_metadata_fails_the_build(change: Any, message: str) -> None:
    metadata = copy.deepcopy(load_metadata())
    change(metadata)
    with pytest.raises(OpenApiError, match=message):
        build(ROUTE_PAIRS, metadata=metadata)
