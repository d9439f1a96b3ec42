"""The compiled pre-check in front of jsonschema (`Schemas.check`): it may only ever say "valid" when
jsonschema would; every refusal, and its wording, stays jsonschema's."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.errors import BadRequest
from emulator.resources import bundled_dir
from emulator.validation import Schemas, bundled_schemas

SCHEMAS = bundled_schemas()
JOB_REQUEST = {
    "fields": "identities.id",
    "mergePolicy": {"id": "m", "version": 1},
    "filter": {
        "segments": [{"segmentId": "s", "segmentNs": "ups", "status": ["realized", "existing"]}],
        "segmentQualificationTime": {"startTime": "2018-01-01T00:00:00Z", "endTime": "2019-01-01T00:00:00Z"},
        "fromIngestTimestamp": "2018-01-01T00:00:00.5+01:00",
        "emptyProfiles": False,
    },
    "additionalFields": {
        "eventList": {"fields": "a", "filter": {"fromIngestTimestamp": "2018-01-01T00:00:00Z"}}
    },
    "destination": {"datasetId": "d", "segmentPerBatch": False},
    "schema": {"name": "_xdm.context.profile"},
    "evaluationInfo": {"segmentation": True},
}
# A valid document per request schema, using every property: mutated one value at a time below.
VALID: dict[str, Any] = {
    "export-job.create.request": JOB_REQUEST,
    "dataset.create.request": {
        "name": "n",
        "description": "d",
        "schemaRef": {"id": "https://ns.adobe.com/x", "contentType": "application/vnd.adobe.xed+json"},
        "schema": "s",
        "tags": {"t": ["a", "b"]},
        "fileDescription": {
            "persisted": True,
            "containerFormat": "parquet",
            "format": "parquet",
            "charset": "UTF-8",
            "delimiters": [","],
            "header": False,
        },
        "enableErrorDiagnostics": True,
        "observableSchema": {},
        "basePath": "/",
        "dataSourceId": 1,
        "aspect": "a",
    },
    "ims.token.request": {
        "grant_type": "client_credentials",
        "client_id": "c",
        "client_secret": "s",
        "scope": "o",
    },
    "control.clock-advance.request": {"seconds": 1.5},
    "control.force-job.request": {
        "status": "FAILED",
        "errors": [{"code": "c", "msg": "m", "callStack": "s"}],
    },
    "control.scenario-default.request": {"name": "stuck"},
    "control.scenario-next.request": {"name": "stuck", "count": 2},
    "segment-definition.create.request": {
        "name": "n",
        "description": "d",
        "expression": {"type": "PQL", "format": "pql/text", "value": 'homeAddress.city = "Berlin"'},
        "schema": {"name": "_xdm.context.profile", "id": "i"},
        "mergePolicyId": "m",
        "evaluationInfo": {"batch": {"enabled": True}, "continuous": {"enabled": False}},
        "ttlInDays": 30,
        "profileInstanceId": "ups",
        "payloadSchema": "string",
        "dataGovernancePolicy": {"excludeOptOut": True},
        "labels": ["a"],
    },
    "segment-definition.patch.request": {
        "id": "x",
        "name": "n",
        "expression": {"type": "PQL", "format": "pql/text", "value": "a = 1"},
        "ttlInDays": 2,
    },
    "segment-job.create.request": {
        "schema": {"name": "_xdm.context.profile"},
        "segments": [{"segmentId": "*"}],
    },
    "bulk-get.request": {"ids": [{"id": "a"}, "b"]},
    "merge-policy.create.request": {
        "name": "n",
        "identityGraph": {"type": "pdg"},
        "attributeMerge": {"type": "dataSetPrecedence", "order": ["d1", "d2"]},
        "schema": {"name": "_xdm.context.profile"},
        "default": False,
        "isActiveOnEdge": False,
        "imsOrgId": "o",
        "version": 1,
        "updateEpoch": 1,
    },
    "merge-policy.patch.request": [{"op": "add", "path": "/default", "value": "true"}],
    # Not a request, but validated at every start (bundled scenarios) and on every upload.
    "scenario": {
        "name": "every-key",
        "kind": "export",
        "description": "d",
        "match": {"filter.segments.0.segmentId": "s*"},
        "steps": [
            {"status": "NEW"},
            {"status": "PROCESSING", "phase": "profileExport", "after": {"polls": 1, "seconds": 1.5}},
            {
                "status": "FAILED",
                "after": {"polls": 2},
                "errors": [{"code": "c", "msg": "m", "callStack": "s"}],
            },
        ],
        "profiles": {"count": 10, "emptyProfiles": 1, "eventsPerProfile": [0, 3]},
        "files": {"maxRecordsPerFile": 5},
        "batches": {"onFailure": "failed"},
        "faults": [
            {
                "operation": "get_job",
                "times": 2,
                "respond": {"status": 503, "headers": {"a": "b"}, "body": {}},
            },
            {"operation": "list_jobs", "delay": {"seconds": 0.5}, "drop": True},
        ],
        "on_cancel": {"status": "FAILED", "errors": [{"code": "c", "msg": "m"}]},
    },
}
REQUESTS = sorted(
    path.name.removesuffix(".schema.json") for path in bundled_dir("schemas").glob("*.request.schema.json")
)
CHECKED = [*REQUESTS, "scenario"]
# Values on which Python's == and JSON Schema's equality disagree, or `$` and the end of the string, etc.
TRICKY: list[Any] = [
    None, True, False, 0, 1, 1.0, 1.5, -1, 315360001, "", "x", "1", [], {}, [1, True], [1, 1.0], ["a", "a"],
    ["realized", "realized"], "realized", "FAILED", "2018-01-01T00:00:00Z\n", "2018-02-30T00:00:00Z",
    "client_credentials", "x" * 513, {"a": 1}, [{"a": 1}, {"a": 1.0}], [{"code": "c"}],
]  # fmt: skip


def _paths(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the document: the root, each key and each list item."""
    found = [path]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*path, index))
    return found


def _mutated(document: Any, path: tuple[Any, ...], change: str, value: Any) -> Any:
    document = copy.deepcopy(document)
    if not path:
        return value
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if change == "drop":
        del parent[path[-1]]
    elif change == "add" and isinstance(parent[path[-1]], dict):
        parent[path[-1]]["unknown"] = value
    else:
        parent[path[-1]] = value
    return document


def test_every_request_schema_has_a_valid_example_here() -> None:
    assert sorted(VALID) == sorted(CHECKED)


@pytest.mark.parametrize("name", CHECKED)
def test_every_request_schema_gets_the_fast_path(name: str) -> None:
    assert SCHEMAS.documents[name]  # a schema file removed or renamed fails here, not silently
    assert SCHEMAS.validator(name).is_valid(VALID[name])
    assert SCHEMAS._fast_valid(name, VALID[name])
    assert SCHEMAS._fast[name] is not None


@pytest.mark.parametrize("name", CHECKED)
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_pre_check_agrees_with_jsonschema_around_valid_documents(name: str, data: st.DataObject) -> None:
    """Never "valid" when jsonschema says invalid; the other way only for `$` before a final newline."""
    document = VALID[name]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(document)))
        change = data.draw(st.sampled_from(["set", "drop", "add"] if path else ["set"]))
        document = _mutated(document, path, change, data.draw(st.sampled_from(TRICKY)))
    fast = SCHEMAS._fast_valid(name, document)
    slow = SCHEMAS.validator(name).is_valid(document)
    assert not (fast and not slow), f"the pre-check accepted what jsonschema refuses: {document!r}"
    if slow and not fast:
        assert "Z\\n" in json.dumps(document), document


def test_a_valid_request_is_returned_as_it_came() -> None:
    body = copy.deepcopy(JOB_REQUEST)
    assert SCHEMAS.check("export-job.create.request", body) is body
    assert body == JOB_REQUEST


def test_refusals_keep_jsonschemas_wording() -> None:
    body = {"destination": {"datasetId": "d"}, "schema": {"name": ""}}
    with pytest.raises(BadRequest) as refused:
        SCHEMAS.check("export-job.create.request", body)
    assert refused.value.detail == (
        "Invalid request body: $.schema.name: '' should be non-empty (rule: minLength)"
    )


def test_compiling_leaves_the_schema_documents_untouched() -> None:
    schemas = Schemas(bundled_dir("schemas"))
    before = copy.deepcopy(schemas.documents)
    for name in REQUESTS:
        assert schemas._fast_valid(name, VALID[name])
    assert schemas.documents == before


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"properties": {"a": {"const": 1}}}, {"a": True}),  # == says true is 1
        ({"properties": {"a": {"enum": [1, "x"]}}}, {"a": True}),
        ({"properties": {"a": {"type": "integer", "const": True}}}, {"a": 1}),
        ({"properties": {"a": {"$ref": "common.schema.json#/$defs/s", "minLength": 3}}}, {"a": "x"}),
        ({"dependentRequired": {"a": ["b"]}}, {"a": 1}),  # draft 2019 on: unknown to the pre-check
        ({"properties": {"a": {"$ref": "#/$defs/loop"}}, "$defs": {"loop": {"$ref": "#/$defs/loop"}}}, {}),
    ],
)
def test_schemas_the_pre_check_could_get_wrong_are_left_to_jsonschema(
    tmp_path: Path, schema: dict[str, Any], instance: Any
) -> None:
    dialect = "https://json-schema.org/draft/2020-12/schema"
    common = {"$schema": dialect, "$id": "https://example.test/common.schema.json", "$defs": {"s": {}}}
    common["$defs"]["s"] = {"type": "string"}
    (tmp_path / "common.schema.json").write_text(json.dumps(common))
    own = {"$schema": dialect, "$id": "https://example.test/t.schema.json", **schema}
    (tmp_path / "t.schema.json").write_text(json.dumps(own))
    schemas = Schemas(tmp_path)
    before = copy.deepcopy(instance)
    assert not schemas._fast_valid("t", instance)
    assert schemas._fast["t"] is None
    if schemas.validator("t").is_valid(instance):
        assert schemas.check("t", instance) == before
    else:
        with pytest.raises(BadRequest):
            schemas.check("t", instance)


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"properties": {"a": {"const": True}}}, {"a": 1}),  # rewritten: a boolean, so 1 is refused
        ({"properties": {"a": {"enum": [True]}}}, {"a": 1.0}),
        ({"prefixItems": [{"type": "string"}], "items": {"type": "integer"}}, ["a", "b"]),  # rewritten
        ({"prefixItems": [{"type": "string"}], "items": False}, ["a", 1]),
        ({"properties": {"a": {"$ref": "#/$defs/s"}}, "$defs": {"s": {"type": "string"}}}, {"a": 1}),
        (
            {"anyOf": [{"required": ["a"]}, {"required": ["b"]}], "not": {"required": ["a", "b"]}},
            {"a": 1, "b": 2},
        ),
    ],
)
def test_rewritten_schemas_refuse_what_jsonschema_refuses(
    tmp_path: Path, schema: dict[str, Any], instance: Any
) -> None:
    dialect = "https://json-schema.org/draft/2020-12/schema"
    own = {"$schema": dialect, "$id": "https://example.test/t.schema.json", **schema}
    (tmp_path / "t.schema.json").write_text(json.dumps(own))
    schemas = Schemas(tmp_path)
    assert not schemas.validator("t").is_valid(instance)
    assert not schemas._fast_valid("t", instance)
    assert schemas._fast["t"] is not None


def test_the_pre_check_never_fills_in_defaults(tmp_path: Path) -> None:
    dialect = "https://json-schema.org/draft/2020-12/schema"
    own = {
        "$schema": dialect,
        "$id": "https://example.test/t.schema.json",
        "properties": {"a": {"default": 1}},
    }
    (tmp_path / "t.schema.json").write_text(json.dumps(own))
    schemas = Schemas(tmp_path)
    instance: dict[str, Any] = {}
    assert schemas.check("t", instance) == {}
    assert schemas._fast["t"] is not None


def test_valid_documents_never_load_jsonschema() -> None:
    """Importing jsonschema costs a start ~30 ms; only a document the pre-check refuses needs it."""
    code = (
        "import sys; from emulator.backend import Backend; from emulator.options import Options; "
        "Backend(Options()); assert 'jsonschema' not in sys.modules, 'imported at start'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
