"""Bad input: every refusal is a JSON 4xx that says what is wrong, and the server keeps serving."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Aep, assert_matches

JOBS = "/data/core/ups/export/jobs"
DATASETS = "/data/foundation/catalog/dataSets"
LIMIT = 1024 * 1024
# The envelope each service answers errors in.
ENVELOPE = {JOBS: "error.ups", DATASETS: "error.problem"}


def message_of(error: dict[str, Any]) -> str:
    if "errors" in error:
        return str(error["errors"][str(error["status"])][0]["message"])
    return str(error["detail"])


async def post_raw(aep: Aep, path: str, body: bytes, status: int) -> str:
    response = await aep.client.post(path, data=body, headers=aep.headers())
    assert response.content_type == "application/json", await response.text()
    error = await response.json()
    assert response.status == status, error
    assert_matches(ENVELOPE[path], error)
    assert error["status"] == status
    return message_of(error)


async def assert_still_serving(aep: Aep) -> None:
    """A bad request leaves the emulator answering normally, state intact."""
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    assert (await aep.get_job(job["id"]))["status"] == "PROCESSING"
    listed = await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
    assert listed["records"][0]["id"] == job["id"]
    health = await aep.client.get("/_emulator/health")
    assert health.status == 200
    assert_matches("control.health.response", await health.json())


def valid_job(dataset_id: str = "ds") -> dict[str, Any]:
    return {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}


@pytest.mark.parametrize("path", [JOBS, DATASETS])
@pytest.mark.parametrize(
    "body",
    [
        b'{"destination":',
        b"{'name': 'x'}",
        b'{"name": "x",}',
        b"nope",
        b'{"name": "x"} {}',
        b"\x00",
        b'{"a"}',
    ],
)
async def test_malformed_json_is_400(aep: Aep, path: str, body: bytes) -> None:
    message = await post_raw(aep, path, body, 400)
    assert "not valid JSON" in message
    await assert_still_serving(aep)


@pytest.mark.parametrize("path", [JOBS, DATASETS])
@pytest.mark.parametrize("body", [b'{"name": "\xff"}', b'{"name": "\xc3\x28"}', b'{"name": "\xed\xa0\x80"}'])
async def test_invalid_utf8_is_400(aep: Aep, path: str, body: bytes) -> None:
    message = await post_raw(aep, path, body, 400)
    assert "UTF-8" in message
    await assert_still_serving(aep)


@pytest.mark.parametrize("path", [JOBS, DATASETS])
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_json_numbers_are_400(aep: Aep, path: str, constant: str) -> None:
    # Echoed back in a job's filter, they would make the response itself invalid JSON.
    body = '{"name": "x", "destination": {"datasetId": "d"}, "schema": {"name": "s"}, "filter": {"x": %s}}'
    message = await post_raw(aep, path, (body % constant).encode(), 400)
    assert constant.lstrip("-") in message
    await assert_still_serving(aep)


async def test_json_nested_past_64_levels_is_400_and_64_are_read(aep: Aep) -> None:
    # Nested values are echoed back (a dataset's own fields), and the encoder stops at 255 levels: the
    # reader refuses what could not be written back, and no less.
    def dataset(depth: int) -> bytes:
        return (
            b'{"name": "deep", "schemaRef": {"id": "x"}, "extra": '
            + b"[" * (depth - 1)
            + b"]" * (depth - 1)
            + b"}"
        )

    message = await post_raw(aep, DATASETS, dataset(65), 400)
    assert "nested too deeply (at most 64 levels)" in message
    response = await aep.client.post(DATASETS, data=dataset(64), headers=aep.headers())
    assert "nested too deeply" not in await response.text()


@pytest.mark.parametrize("path", [JOBS, DATASETS])
async def test_deeply_nested_json_is_400(aep: Aep, path: str) -> None:
    depth = 100_000
    message = await post_raw(aep, path, b"[" * depth + b"]" * depth, 400)
    assert "nested too deeply" in message
    await assert_still_serving(aep)


@pytest.mark.parametrize("path", [JOBS, DATASETS])
async def test_empty_body_is_400(aep: Aep, path: str) -> None:
    message = await post_raw(aep, path, b"", 400)
    assert "empty" in message
    await assert_still_serving(aep)


@pytest.mark.parametrize("path", [JOBS, DATASETS])
@pytest.mark.parametrize(
    ("body", "kind"), [(b"[]", "array"), (b"null", "None"), (b'"x"', "'x'"), (b"42", "42")]
)
async def test_non_object_body_is_400(aep: Aep, path: str, body: bytes, kind: str) -> None:
    message = await post_raw(aep, path, body, 400)
    assert "$:" in message
    assert "(rule: type)" in message
    assert "object" in message
    await assert_still_serving(aep)


# (a change to a valid job request, the JSON path and the rule the 400 must name)
JOB_VIOLATIONS: list[tuple[dict[str, Any], str, str]] = [
    ({"destination": "ds"}, "$.destination", "type"),
    ({"destination": {"datasetId": 5}}, "$.destination.datasetId", "type"),
    ({"destination": {"datasetId": ""}}, "$.destination.datasetId", "minLength"),
    ({"destination": {"datasetId": "ds", "segmentPerBatch": "yes"}}, "$.destination.segmentPerBatch", "type"),
    ({"schema": []}, "$.schema", "type"),
    ({"schema": {"name": ""}}, "$.schema.name", "minLength"),
    ({"fields": ["identityMap"]}, "$.fields", "type"),
    ({"mergePolicy": {"id": "mp", "version": "1"}}, "$.mergePolicy.version", "type"),
    ({"mergePolicy": {"id": "mp", "version": 0}}, "$.mergePolicy.version", "minimum"),
    ({"filter": []}, "$.filter", "type"),
    ({"filter": {"segments": {"segmentId": "s"}}}, "$.filter.segments", "type"),
    (
        {"filter": {"segments": [{"segmentId": "s", "status": "realized"}]}},
        "$.filter.segments[0].status",
        "type",
    ),
    ({"filter": {"segments": [{"segmentId": "s", "status": []}]}}, "$.filter.segments[0].status", "minItems"),
    (
        {"filter": {"segments": [{"segmentId": "s"}, {"segmentId": "t", "status": ["exiting"]}]}},
        "$.filter.segments[1].status[0]",
        "enum",
    ),
    ({"filter": {"segments": [{"segmentId": 7}]}}, "$.filter.segments[0].segmentId", "type"),
    ({"filter": {"emptyProfiles": "yes"}}, "$.filter.emptyProfiles", "type"),
    ({"filter": {"fromIngestTimestamp": "yesterday"}}, "$.filter.fromIngestTimestamp", "pattern"),
    (
        {"filter": {"segmentQualificationTime": {"startTime": "2018-01-01"}}},
        "$.filter.segmentQualificationTime.startTime",
        "pattern",
    ),
    (
        {"additionalFields": {"eventList": {"filter": {"toIngestTimestamp": 12}}}},
        "$.additionalFields.eventList.filter.toIngestTimestamp",
        "type",
    ),
    ({"additionalFields": {"eventList": {"fields": False}}}, "$.additionalFields.eventList.fields", "type"),
    ({"evaluationInfo": {"segmentation": "true"}}, "$.evaluationInfo.segmentation", "type"),
]


@pytest.mark.parametrize(("change", "path", "rule"), JOB_VIOLATIONS)
async def test_wrong_types_name_the_path_and_rule(
    aep: Aep, change: dict[str, Any], path: str, rule: str
) -> None:
    body = {**valid_job(), **change}
    message = await post_raw(aep, JOBS, json.dumps(body).encode(), 400)
    assert f"{path}:" in message
    assert f"(rule: {rule})" in message
    await assert_still_serving(aep)


@pytest.mark.parametrize(
    ("body", "path", "missing"),
    [
        ({"schema": {"name": "s"}}, "$", "destination"),
        ({"destination": {"datasetId": "ds"}}, "$", "schema"),
        ({"destination": {}, "schema": {"name": "s"}}, "$.destination", "datasetId"),
        ({"destination": {"datasetId": "ds"}, "schema": {}}, "$.schema", "name"),
        (
            {**valid_job(), "filter": {"segments": [{"segmentNs": "ups"}]}},
            "$.filter.segments[0]",
            "segmentId",
        ),
    ],
)
async def test_missing_required_fields_name_the_path_and_rule(
    aep: Aep, body: dict[str, Any], path: str, missing: str
) -> None:
    message = await post_raw(aep, JOBS, json.dumps(body).encode(), 400)
    assert f"{path}: '{missing}' is a required property (rule: required)" in message
    await assert_still_serving(aep)


async def test_empty_object_names_a_missing_field(aep: Aep) -> None:
    message = await post_raw(aep, JOBS, b"{}", 400)
    assert "$: " in message
    assert "(rule: required)" in message
    assert "'destination'" in message or "'schema'" in message


@pytest.mark.parametrize(
    ("body", "path", "rule"),
    [
        ({}, "$", "required"),
        ({"name": 5}, "$.name", "type"),
        ({"name": ""}, "$.name", "minLength"),
        ({"name": "x", "tags": {"team": "crm"}}, "$.tags.team", "type"),
        ({"name": "x", "schemaRef": {"contentType": "x"}}, "$.schemaRef", "required"),
        ({"name": "x", "fileDescription": {"format": "xml"}}, "$.fileDescription.format", "enum"),
        ({"name": "x", "dataSourceId": "1"}, "$.dataSourceId", "type"),
        ({"name": "x", "enableErrorDiagnostics": "no"}, "$.enableErrorDiagnostics", "type"),
    ],
)
async def test_bad_dataset_requests_name_the_path_and_rule(
    aep: Aep, body: dict[str, Any], path: str, rule: str
) -> None:
    message = await post_raw(aep, DATASETS, json.dumps(body).encode(), 400)
    assert f"{path}:" in message
    assert f"(rule: {rule})" in message
    await assert_still_serving(aep)


@pytest.mark.parametrize("path", [JOBS, DATASETS])
async def test_body_over_the_limit_is_413(aep: Aep, path: str) -> None:
    body = json.dumps({"name": "x", "description": "a" * LIMIT}).encode()
    message = await post_raw(aep, path, body, 413)
    assert str(LIMIT) in message
    await assert_still_serving(aep)


async def test_body_at_the_limit_is_accepted(aep: Aep) -> None:
    prefix, suffix = b'{"name": "x", "description": "', b'"}'
    body = prefix + b"a" * (LIMIT - len(prefix) - len(suffix)) + suffix
    assert len(body) == LIMIT
    response = await aep.client.post(DATASETS, data=body, headers=aep.headers())
    created = await response.json()
    assert response.status == 201, created
    assert_matches("dataset.create.response", created)


@pytest.mark.parametrize("query", ["limit=%FF", "offset=%00", "status=%FF", "sort=%FF", "start=%E2%82%AC"])
async def test_garbled_query_values_are_400(aep: Aep, query: str) -> None:
    await aep.call("GET", f"{JOBS}?{query}", status=400, schema="error.ups")
    await assert_still_serving(aep)


@pytest.mark.parametrize(
    ("method", "path", "schema"),
    [
        ("GET", "/", "error.problem"),
        ("GET", "/nope", "error.problem"),
        ("POST", "/nope", "error.problem"),
        ("GET", "/data/foundation/nothing", "error.problem"),
        ("GET", "/data/foundation/catalog/dataSets/x/files/y", "error.problem"),
        ("GET", "/data/core/ups/export", "error.ups"),
        ("GET", f"{JOBS}/1/extra", "error.ups"),
        ("DELETE", "/data/core/ups/nothing", "error.ups"),
        ("GET", "/_emulator/nope", "error.problem"),
        ("GET", "/_emulator", "error.problem"),
    ],
)
async def test_unknown_paths_are_404_json(aep: Aep, method: str, path: str, schema: str) -> None:
    error = await aep.call(method, path, status=404, schema=schema)
    assert error["status"] == 404
    assert error["title"] == "NotFoundError"
    await assert_still_serving(aep)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("filter", "fromIngestTimestamp"), "2018-02-30T00:00:00Z"),
        (("filter", "segmentQualificationTime", "startTime"), "2018-01-01T25:00:00Z"),
        (("additionalFields", "eventList", "filter", "toIngestTimestamp"), "2018-01-01T00:00:00+99:00"),
    ],
)
async def test_impossible_timestamps_are_a_400_naming_the_field(
    aep: Aep, path: tuple[str, ...], value: str
) -> None:
    dataset_id = await aep.create_dataset()
    body: dict[str, Any] = {
        "destination": {"datasetId": dataset_id},
        "schema": {"name": "_xdm.context.profile"},
    }
    node = body
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    error = await aep.call("POST", "/data/core/ups/export/jobs", json=body, status=400, schema="error.ups")
    assert "$." + ".".join(path) in error["errors"]["400"][0]["message"]
