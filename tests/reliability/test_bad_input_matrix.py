"""The bad-input matrix: every refusal is a 4xx JSON error in the documented shape, and the server keeps
serving. tests/api/test_bad_input.py has the basics (malformed JSON and a few wrong types on the two main
bodies); these walk every level of every JSON body, every route and method, the query parameters, the
headers, raw HTTP that no client library would send, and property-based bodies from the request schema.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture.utils import many
from hypothesis_jsonschema import from_schema

from emulator.api.dispatch import MAX_HEADER_BYTES, MAX_HEADERS_BYTES, MAX_URL_BYTES, PARSER_LIMIT_BYTES
from emulator.app import ROUTES
from emulator.validation import bundled_schemas
from tests.conftest import DEFAULT_MERGE_POLICY, Aep, assert_matches
from tests.reliability.conftest import (
    RawResponse,
    check_error,
    finished_file,
    json_error,
    message_of,
    raw_http,
)


def _more(self: many) -> bool:
    """hypothesis-jsonschema 0.23 (the latest) drives hypothesis' `many` with `while elements.more()`;
    hypothesis 6.14x replaced that with `with many(...) as elements: for _ in elements`. This is the
    old call on top of the new one, for as long as hypothesis-jsonschema lags behind."""
    iterator = self.__dict__.get("_compat_iterator")
    if iterator is None:
        self.__enter__()
        iterator = self.__dict__["_compat_iterator"] = iter(self)
    if next(iterator, StopIteration) is StopIteration:
        self.__exit__(None)
        return False
    return True


if not hasattr(many, "more"):
    many.more = _more  # type: ignore[attr-defined]

JOBS = "/data/core/ups/export/jobs"
DATASETS = "/data/foundation/catalog/dataSets"
BATCHES = "/data/foundation/catalog/batches"
EXPORT = "/data/foundation/export"
TIMESTAMP = "2018-01-01T00:00:00Z"
# One value of each JSON type, to put where another type belongs.
KINDS: dict[str, Any] = {
    "null": None,
    "boolean": True,
    "integer": 7,
    "number": 1.5,
    "string": "x",
    "array": [],
    "object": {},
}


async def assert_healthy(aep: Aep) -> None:
    """After bad input the emulator still creates, polls and lists jobs, and says it is healthy."""
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    assert (await aep.get_job(job["id"]))["id"] == job["id"]
    listed = await aep.call("GET", JOBS, status=200, schema="export-job.list.response")
    assert job["id"] in [record["id"] for record in listed["records"]]
    health = await aep.client.get("/_emulator/health")
    assert health.status == 200
    assert_matches("control.health.response", await health.json())


async def send(aep: Aep, method: str, path: str, body: bytes | None = None, **headers: str) -> Any:
    response = await aep.client.request(method, path, data=body, headers={**aep.headers(), **headers})
    return response


# -- every level of every JSON body --------------------------------------------------------------------


def full_job(dataset_id: str) -> dict[str, Any]:
    """A valid export-job request with every property the schema knows."""
    return {
        "fields": "identityMap,person.name",
        "mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 1},
        "filter": {
            "segments": [{"segmentId": "s1", "segmentNs": "ups", "status": ["realized"]}],
            "segmentQualificationTime": {"startTime": TIMESTAMP, "endTime": "2018-02-01T00:00:00Z"},
            "fromIngestTimestamp": TIMESTAMP,
            "emptyProfiles": False,
        },
        "additionalFields": {
            "eventList": {
                "fields": "_id,timestamp",
                "filter": {"fromIngestTimestamp": TIMESTAMP, "toIngestTimestamp": "2019-01-01T00:00:00Z"},
            }
        },
        "destination": {"datasetId": dataset_id, "segmentPerBatch": False},
        "schema": {"name": "_xdm.context.profile"},
        "evaluationInfo": {"segmentation": True},
    }


def full_dataset() -> dict[str, Any]:
    """A valid dataset request with every property the schema knows."""
    return {
        "name": "everything",
        "description": "d",
        "schemaRef": {"id": "https://ns.adobe.com/xdm/context/profile__union", "contentType": "x"},
        "schema": "s",
        "tags": {"team": ["crm"]},
        "fileDescription": {
            "persisted": True,
            "containerFormat": "parquet",
            "format": "parquet",
            "charset": "UTF-8",
            "delimiters": [","],
            "header": True,
        },
        "enableErrorDiagnostics": False,
        "observableSchema": {},
        "basePath": "/p",
        "dataSourceId": 1,
        "aspect": "production",
    }


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a `$ref` into common.schema.json (the only file the request schemas refer to)."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    document, _, pointer = ref.partition("#")
    resolved: Any = bundled_schemas().documents[document.removesuffix(".schema.json")]
    for part in pointer.strip("/").split("/"):
        resolved = resolved[part]
    return dict(resolved)


Path = tuple[str | int, ...]


def walk(body: Any, schema: dict[str, Any], path: Path = ()) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every value of `body` below the root, with the schema it must match."""
    schema = resolve(schema)
    if isinstance(body, dict):
        for key, value in body.items():
            sub = schema.get("properties", {}).get(key, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                yield (*path, key), sub
                yield from walk(value, sub, (*path, key))
    elif isinstance(body, list) and isinstance(schema.get("items"), dict):
        for index, value in enumerate(body):
            yield (*path, index), schema["items"]
            yield from walk(value, schema["items"], (*path, index))


def objects(body: Any, schema: dict[str, Any], path: Path = ()) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The root and every object inside `body`, with its schema."""
    schema = resolve(schema)
    if isinstance(body, dict):
        yield path, schema
    for child, sub in walk(body, schema, path):
        if len(child) == len(path) + 1 and isinstance(get(body, child[len(path) :]), dict | list):
            yield from objects(get(body, child[len(path) :]), sub, child)


def get(body: Any, path: Path) -> Any:
    for part in path:
        body = body[part]
    return body


def replaced(body: Any, path: Path, value: Any) -> Any:
    changed = copy.deepcopy(body)
    get(changed, path[:-1])[path[-1]] = value
    return changed


def json_path(path: Path) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def wrong_kinds(schema: dict[str, Any]) -> list[str]:
    """JSON types a value with this schema must not have."""
    allowed = schema.get("type")
    if allowed is None:  # an enum: none of our samples is in it
        return list(KINDS)
    allowed = {allowed} if isinstance(allowed, str) else set(allowed)
    if "number" in allowed:
        allowed.add("integer")
    return [kind for kind in KINDS if kind not in allowed]


@pytest.fixture
async def dataset_id(aep: Aep) -> str:
    return await aep.create_dataset()


@pytest.fixture
async def live_job(aep: Aep, dataset_id: str) -> int:
    job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": "stuck"})
    return int(job["id"])


BODIES = ["export-job", "dataset", "clock-advance", "scenario-default", "scenario-next", "force-job"]


async def body_case(aep: Aep, which: str) -> tuple[str, str, Any, str, int]:
    """(method, path, a valid body with every property, its schema, success status)."""
    if which == "export-job":
        dataset_id = await aep.create_dataset()
        return "POST", JOBS, full_job(dataset_id), "export-job.create.request", 200
    if which == "dataset":
        return "POST", DATASETS, full_dataset(), "dataset.create.request", 201
    if which == "clock-advance":
        return "POST", "/_emulator/clock/advance", {"seconds": 1}, "control.clock-advance.request", 200
    if which == "scenario-default":
        body = {"name": "success"}
        return "PUT", "/_emulator/scenarios/default", body, "control.scenario-default.request", 200
    if which == "scenario-next":
        body = {"name": "success", "count": 1}
        return "POST", "/_emulator/scenarios/next", body, "control.scenario-next.request", 200
    job = await aep.create_job(await aep.create_dataset(), headers={"x-emulator-scenario": "stuck"})
    body = {"status": "PROCESSING", "errors": [{"code": "c", "msg": "m", "callStack": "s"}]}
    return "POST", f"/_emulator/jobs/{job['id']}/force", body, "control.force-job.request", 200


@pytest.mark.parametrize("which", BODIES)
async def test_every_wrong_type_at_every_level_is_a_400_naming_it(aep: Aep, which: str) -> None:
    method, path, body, schema_name, ok = await body_case(aep, which)
    schema = bundled_schemas().documents[schema_name]
    cases = 0
    for where, sub in walk(body, schema):
        for kind in wrong_kinds(resolve(sub)):
            response = await send(aep, method, path, json.dumps(replaced(body, where, KINDS[kind])).encode())
            error = await json_error(response, 400)
            assert f"{json_path(where)}:" in message_of(error), (where, kind, message_of(error))
            cases += 1
    assert cases >= len(body)
    # The full body itself is fine.
    response = await send(aep, method, path, json.dumps(body).encode())
    assert response.status == ok, await response.text()
    await assert_healthy(aep)


@pytest.mark.parametrize("which", BODIES)
async def test_every_missing_required_field_is_a_400_naming_it(aep: Aep, which: str) -> None:
    method, path, body, schema_name, _ = await body_case(aep, which)
    schema = bundled_schemas().documents[schema_name]
    cases = 0
    for where, sub in objects(body, schema):
        for key in resolve(sub).get("required", []):
            without = copy.deepcopy(body)
            del get(without, where)[key]
            error = await json_error(await send(aep, method, path, json.dumps(without).encode()), 400)
            expected = f"{json_path(where)}: '{key}' is a required property (rule: required)"
            assert expected in message_of(error), message_of(error)
            cases += 1
    assert cases >= 1
    await assert_healthy(aep)


@pytest.mark.parametrize("which", BODIES)
async def test_unknown_fields_at_every_level_are_ignored_or_named(aep: Aep, which: str) -> None:
    """AEP's bodies take extra fields (and the emulator does not echo them at the top); the control
    plane's bodies are closed, so an extra field there is a 400 naming it."""
    method, path, body, schema_name, ok = await body_case(aep, which)
    schema = bundled_schemas().documents[schema_name]
    extra = {"nested": [1, "two", None, {"three": 3.5}]}
    for where, sub in objects(body, schema):
        extras = resolve(sub).get("additionalProperties", True)
        if isinstance(extras, dict):
            continue  # a map (e.g. tags): its keys are data, checked by the wrong-type matrix
        with_extra = copy.deepcopy(body)
        get(with_extra, where)["zzUnexpected"] = extra
        response = await send(aep, method, path, json.dumps(with_extra).encode())
        if extras is True:
            assert response.status == ok, await response.text()
            answer = await response.json()
            if which == "export-job":
                assert_matches("export-job.response", answer)
                assert "zzUnexpected" not in answer
        else:
            error = await json_error(response, 400)
            assert "zzUnexpected" in message_of(error)
    await assert_healthy(aep)


# -- malformed JSON, numbers and text in every JSON body -----------------------------------------------

JSON_ENDPOINTS = [
    ("POST", JOBS),
    ("POST", DATASETS),
    ("POST", "/_emulator/clock/advance"),
    ("PUT", "/_emulator/scenarios/default"),
    ("POST", "/_emulator/scenarios/next"),
    ("POST", "/_emulator/jobs/{job}/force"),
]
BAD_DOCUMENTS = [
    pytest.param(b"\xef\xbb\xbf{}", "JSON", id="byte-order-mark"),
    pytest.param(b'{"a": 1e400}', "1e400", id="float-overflow"),
    pytest.param(b'{"a": -1e400}', "1e400", id="negative-float-overflow"),
    pytest.param(b'{"a": ' + b"9" * 5000 + b"}", "JSON", id="5000-digit-integer"),
    pytest.param(b'{"a": "\\ud800"}', "surrogate", id="lone-high-surrogate"),
    pytest.param(b'{"a": "\\udfff x"}', "surrogate", id="lone-low-surrogate"),
    pytest.param(b'{"\\ud800": 1}', "surrogate", id="surrogate-in-a-key"),
    pytest.param(b'{"a": "\\ud800\\u0041"}', "surrogate", id="surrogate-then-letter"),
    pytest.param(b'{"a": "\xc0\xaf"}', "UTF-8", id="overlong-utf8"),
    pytest.param(b'{"a": "\xed\xa0\x80"}', "UTF-8", id="encoded-surrogate"),
    pytest.param(b'{"a": "\xf4\x90\x80\x80"}', "UTF-8", id="beyond-unicode"),
    pytest.param('{"a": "x"}'.encode("utf-16"), "UTF-8", id="utf16"),
    pytest.param(b'{"a": 1, "a": 2', "JSON", id="truncated"),
    pytest.param(b"[" * 50_000, "JSON", id="deep-unclosed"),
    pytest.param(b'{"a": "\\x41"}', "JSON", id="bad-escape"),
    pytest.param(b'{"a": 01}', "JSON", id="leading-zero"),
    pytest.param(b'{"a": .5}', "JSON", id="bare-fraction"),
    pytest.param(b'{"a": "tab\there"}', "JSON", id="raw-control-character"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
async def test_unparseable_documents_are_400_on_every_json_endpoint(
    aep: Aep, live_job: int, method: str, path: str
) -> None:
    path = path.format(job=live_job)
    for param in BAD_DOCUMENTS:
        body, needle = param.values
        assert isinstance(body, bytes)
        error = await json_error(await send(aep, method, path, body), 400)
        assert needle in message_of(error), (param.id, message_of(error))
    await assert_healthy(aep)


async def test_surrogate_pairs_and_other_scripts_survive_the_whole_export(aep: Aep) -> None:
    """Valid non-ASCII text (an emoji is a surrogate pair in JSON) goes through jobs, lists and files."""
    dataset_id = await aep.create_dataset(name="données \U0001f600")
    body = (
        '{"destination": {"datasetId": "%s"}, "schema": {"name": "\\ud83d\\ude00"},'
        ' "fields": "identityMap,person.name,\\u540d\\u524d",'
        ' "filter": {"segments": [{"segmentId": "s\\u00e9gment-\\ud83d\\ude00"}]}}'
    ).replace("%s", dataset_id)
    response = await send(aep, "POST", JOBS, body.encode())
    assert response.status == 200, await response.text()
    job = await response.json()
    assert job["filter"]["segments"][0]["segmentId"] == "ségment-\U0001f600"
    await aep.get_job(job["id"])
    done = await aep.get_job(job["id"])
    assert done["status"] == "SUCCEEDED"
    files = await aep.call(
        "GET",
        f"{EXPORT}/batches/{done['destination']['batchId']}/files",
        status=200,
        schema="data-access.batch-files.response",
    )
    for entry in files["data"]:
        listing = await aep.call(
            "GET",
            f"{EXPORT}/files/{entry['dataSetFileId']}",
            status=200,
            schema="data-access.file-listing.response",
        )
        name = listing["data"][0]["name"]
        download = await aep.client.get(
            f"{EXPORT}/files/{entry['dataSetFileId']}", params={"path": name}, headers=aep.headers()
        )
        assert download.status == 200
        assert len(await download.read()) == int(listing["data"][0]["length"])
    await aep.call("GET", JOBS, status=200, schema="export-job.list.response")


@pytest.mark.parametrize("header", ["x-gw-ims-org-id", "x-sandbox-name", "x-api-key"])
async def test_tenant_headers_that_are_not_utf8_are_400(aep: Aep, header: str) -> None:
    """Such bytes reach the app as lone surrogates, which no file or strict JSON parser can take."""
    host, port = aep.client.host, aep.client.port
    lines = "".join(f"{k}: {v}\r\n" for k, v in aep.headers().items() if k != header)
    request = (
        f"GET {DATASETS} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{lines}{header}: caf".encode()
        + b"\xc3\r\n\r\n"
    )
    answer = await raw_http(host, port, request)
    body = check_raw_error(DATASETS, answer)
    assert header in message_of(body)
    # Valid UTF-8 outside ASCII is fine.
    fine = await aep.client.get(DATASETS, headers={**aep.headers(), header: "café"})
    assert fine.status == 200
    await assert_healthy(aep)


# -- sizes ---------------------------------------------------------------------------------------------


async def chunks(total: int) -> AsyncIterator[bytes]:
    """A body sent chunked, so no Content-Length announces its size."""
    yield b'{"name": "'
    for _ in range(total // 65536):
        yield b"a" * 65536
    yield b'"}'


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", JOBS),
        ("POST", DATASETS),
        ("POST", "/_emulator/clock/advance"),
        ("POST", "/_emulator/scenarios"),
        ("POST", "/ims/token/v3"),
    ],
)
async def test_bodies_over_the_limit_are_413_even_when_chunked(aep: Aep, method: str, path: str) -> None:
    limit = 1024 * 1024
    # IMS reads form bodies only; the others JSON.
    kind = "application/x-www-form-urlencoded" if path.startswith("/ims/") else "application/json"
    headers = {**aep.headers(), "Content-Type": kind}
    plain = await aep.client.request(method, path, data=b"x" * (limit + 1), headers=headers)
    assert str(limit) in message_of(await json_error(plain, 413))
    chunked = await aep.client.request(method, path, data=chunks(limit + 65536), headers=headers)
    await json_error(chunked, 413)
    await assert_healthy(aep)


async def test_an_uploaded_scenario_has_its_own_smaller_limit(aep: Aep) -> None:
    body = b"description: " + b"a" * (256 * 1024) + b"\nsteps: [{status: NEW}]\n"
    response = await aep.client.post("/_emulator/scenarios", data=body)
    await json_error(response, 413)


async def test_yaml_alias_bombs_are_refused_quickly(aep: Aep) -> None:
    """Nine levels of ten aliases are a billion values: refused before anything walks them."""
    lines = ["steps:", "  - status: NEW", "description: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    keys = [f"k{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    document = "\n".join([*lines, f"match: {{{', '.join(keys)}}}"]) + "\n"
    response = await aep.client.post("/_emulator/scenarios", data=document.encode())
    assert "aliases" in message_of(await json_error(response, 400))
    await assert_healthy(aep)


@pytest.mark.parametrize(
    "path", [JOBS + "/1", DATASETS, BATCHES, EXPORT + "/batches/b/files", "/_emulator/health"]
)
async def test_long_urls_are_414_json_up_to_aiohttps_own_limit(aep: Aep, path: str) -> None:
    long_query = "?pad=" + "a" * MAX_URL_BYTES
    error = await json_error(await aep.client.get(path + long_query, headers=aep.headers()), 414)
    assert str(MAX_URL_BYTES) in message_of(error)
    # Just under our limit is served as usual.
    fits = "?pad=" + "a" * (MAX_URL_BYTES - len(path) - len("?pad="))
    response = await aep.client.get(path + fits, headers=aep.headers())
    assert response.status < 500
    assert response.status not in (414, 431)
    await assert_healthy(aep)


async def test_long_headers_are_431_json(aep: Aep) -> None:
    one = await aep.client.get(JOBS, headers={**aep.headers(), "x-pad": "a" * MAX_HEADER_BYTES})
    assert "x-pad" in message_of(await json_error(one, 431))
    each = MAX_HEADER_BYTES // 2
    many = {f"x-pad-{i}": "a" * each for i in range(MAX_HEADERS_BYTES // each + 1)}
    await json_error(await aep.client.get(JOBS, headers={**aep.headers(), **many}), 431)
    await assert_healthy(aep)


async def test_past_aiohttps_parser_limits_aiohttp_answers_400_itself(aep: Aep) -> None:
    """The one place the answer is not ours: aiohttp refuses a request line or header longer than its
    parser allows (PARSER_LIMIT_BYTES), or more than 128 headers, before the app sees the request, with
    a plain-text 400 and a closed connection. aiohttp has no public hook to render it."""
    host, port = aep.client.host, aep.client.port
    base = "".join(f"{k}: {v}\r\n" for k, v in aep.headers().items())
    base += "Connection: close\r\n"  # a request that got through would get its answer, then EOF
    over = "a" * (PARSER_LIMIT_BYTES + 1)
    requests = [
        f"GET {JOBS}?pad={over} HTTP/1.1\r\nHost: x\r\n{base}\r\n",
        f"GET {JOBS} HTTP/1.1\r\nHost: x\r\n{base}x-pad: {over}\r\n\r\n",
        f"GET {JOBS} HTTP/1.1\r\nHost: x\r\n{base}" + "".join(f"x-h{i}: v\r\n" for i in range(200)) + "\r\n",
    ]
    for request in requests:
        answer = await raw_http(host, port, request.encode())
        assert answer.status == 400
    await assert_healthy(aep)


# -- numbers in queries and bodies ---------------------------------------------------------------------

NUMBERS = [
    "-1",
    "-99999999999999999999",
    "0",
    "99999999999999999999999999999",
    "9" * 4000,
    "1e3",
    "1.5",
    "0x10",
    "1_000",
    " 7 ",
    "\u0663",  # ARABIC-INDIC DIGIT THREE
    "NaN",
    "inf",
    "",
    "%00",
]


@pytest.mark.parametrize(
    ("path", "names"),
    [
        (JOBS, ["limit", "start", "page", "offset"]),
        (DATASETS, ["limit", "start"]),
        (BATCHES, ["limit", "start", "createdAfter", "createdBefore"]),
        ("/_emulator/requests", ["method", "path"]),
    ],
)
async def test_odd_numbers_in_queries_never_fail_the_server(aep: Aep, path: str, names: list[str]) -> None:
    dataset_id = await aep.create_dataset()
    await aep.create_job(dataset_id)
    for name in names:
        for value in NUMBERS:
            response = await aep.client.get(f"{path}?{name}={value}", headers=aep.headers())
            if response.status >= 400:
                await json_error(response, 400)
            else:
                assert response.status == 200, await response.text()
                await response.json()
    # The contract's readings: a negative limit is refused, a huge one is clamped.
    await json_error(await aep.client.get(f"{JOBS}?limit=-1", headers=aep.headers()), 400)
    huge = await aep.call("GET", f"{JOBS}?limit={'9' * 30}", status=200, schema="export-job.list.response")
    assert huge["page"]["pageSize"] <= 1000
    await assert_healthy(aep)


async def test_odd_numbers_in_data_access_queries(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    await aep.get_job(job["id"])
    await aep.get_job(job["id"])
    path = f"{EXPORT}/batches/{job['destination']['batchId']}/files"
    for name in ("start", "limit"):
        for value in NUMBERS:
            response = await aep.client.get(f"{path}?{name}={value}", headers=aep.headers())
            if response.status >= 400:
                await json_error(response, 400)
            else:
                assert_matches("data-access.batch-files.response", await response.json())
    await assert_healthy(aep)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 10**30}}, 200),
        ({"mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": -(10**30)}}, 400),
        (
            {"mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 1.0}},
            200,
        ),  # JSON Schema: 1.0 is an integer
        ({"mergePolicy": {"id": DEFAULT_MERGE_POLICY, "version": 1.5}}, 400),
        ({"filter": {"anything": 1e300, "small": -1e-300}}, 200),
    ],
)
async def test_huge_and_negative_numbers_in_the_job_body(
    aep: Aep, dataset_id: str, change: dict[str, Any], status: int
) -> None:
    body = {**full_job(dataset_id), **change}
    response = await send(aep, "POST", JOBS, json.dumps(body).encode())
    if status == 200:
        assert response.status == 200, await response.text()
        job = await response.json()
        assert_matches("export-job.response", job)
        polled = await aep.get_job(job["id"])
        assert polled["mergePolicy"] == job["mergePolicy"]
    else:
        await json_error(response, status)
    await assert_healthy(aep)


@pytest.mark.parametrize("seconds", [-1, -1e-9, 315360000.5, 10**20])
async def test_clock_bounds(aep: Aep, seconds: float) -> None:
    response = await aep.client.post("/_emulator/clock/advance", json={"seconds": seconds})
    await json_error(response, 400)


async def test_a_clock_thousands_of_years_ahead_still_serves_everything(aep: Aep) -> None:
    for _ in range(300):  # 3,000 years, in steps of the schema's maximum (10 years)
        response = await aep.client.post("/_emulator/clock/advance", json={"seconds": 315360000})
        assert response.status == 200
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    await aep.get_job(job["id"])
    assert (await aep.get_job(job["id"]))["status"] == "SUCCEEDED"
    await aep.call("GET", BATCHES, status=200, schema="batch.map.response")
    await assert_healthy(aep)


# -- cursors, paths and ids ----------------------------------------------------------------------------

BOGUS_CURSORS = [
    "abc",
    "1_",
    "_1",
    "1_2_3",
    "-1_5",
    "1_-5",
    "9" * 19 + "_1",
    "1_" + "9" * 19,
    "1.5_2",
    "\uff11_\uff12",  # fullwidth digits
    " 1_2",
    "1_2 ",
    "1__2",
    "0x1_2",
    "%E2%80%8B1_2",  # zero-width space
]


@pytest.mark.parametrize("sort", [None, "updateTime:asc", "creationTime:desc"])
async def test_bogus_cursors_are_400_and_odd_valid_ones_are_empty_pages(aep: Aep, sort: str | None) -> None:
    dataset_id = await aep.create_dataset()
    for _ in range(3):
        await aep.create_job(dataset_id)
    suffix = f"&sort={sort}" if sort else ""
    for cursor in BOGUS_CURSORS:
        response = await aep.client.get(f"{JOBS}?offset={cursor}{suffix}", headers=aep.headers())
        assert "offset" in message_of(await json_error(response, 400)), cursor
    for cursor in ("0_0", "99999999999999999_99999999999999999", "1700000000000_999999"):
        page = await aep.call(
            "GET", f"{JOBS}?offset={cursor}{suffix}", status=200, schema="export-job.list.response"
        )
        assert len(page["records"]) <= 3
    await assert_healthy(aep)


async def test_a_cursor_of_a_deleted_job_keeps_paging(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    ids = []
    for _ in range(5):
        job = await aep.create_job(dataset_id)
        await aep.get_job(job["id"])
        await aep.get_job(job["id"])
        ids.append(job["id"])
    page = await aep.call("GET", f"{JOBS}?limit=2", status=200, schema="export-job.list.response")
    seen = [r["id"] for r in page["records"]]
    cursor_job = seen[-1]
    await aep.call("DELETE", f"{JOBS}/{cursor_job}", status=200, schema="export-job.cancel.response")
    while page["link"]["next"]:
        page = await aep.call(
            "GET", f"/data/core/ups{page['link']['next']}", status=200, schema="export-job.list.response"
        )
        seen += [r["id"] for r in page["records"]]
    assert sorted(seen) == sorted(ids)


TRAVERSALS = [
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/etc/passwd",
    "....//....//etc/passwd",
    "..\\..\\windows\\win.ini",
    "C:\\Windows\\win.ini",
    "file:///etc/passwd",
    "%00",
    "\u2024\u2024/\u2024\u2024/etc/passwd",  # one-dot leaders
    ".",
    "",
    "*",
    "part-*",
]


async def test_path_traversal_in_path_is_404(aep: Aep) -> None:
    file_id, name = await finished_file(aep)
    variants = [*TRAVERSALS, f"{name}/../{name}", f"./{name}", f"{name}%00.txt", f"{name}/", name.upper()]
    for path in variants:
        for method in ("GET", "HEAD"):
            response = await aep.client.request(
                method, f"{EXPORT}/files/{file_id}", params={"path": path}, headers=aep.headers()
            )
            if method == "GET":
                await json_error(response, 404)
            else:
                assert response.status == 404
    ok = await aep.client.get(f"{EXPORT}/files/{file_id}", params={"path": name}, headers=aep.headers())
    assert ok.status == 200
    await assert_healthy(aep)


async def test_path_traversal_in_the_url_path_is_404(aep: Aep) -> None:
    host, port = aep.client.host, aep.client.port
    base = "".join(f"{k}: {v}\r\n" for k, v in aep.headers().items())
    for target in [
        f"{EXPORT}/files/..%2F..%2F..%2Fetc%2Fpasswd",
        f"{EXPORT}/files/../../../etc/passwd",
        f"{EXPORT}/files/%2e%2e",
        f"{EXPORT}/batches/..%2Fbatches/files",
        f"{JOBS}/..%2F1",
        f"{DATASETS}/%2e%2e%2f%2e%2e",
        "/data/../etc/passwd",
    ]:
        answer = await raw_http(
            host, port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{base}\r\n".encode()
        )
        path = JOBS if target.startswith(JOBS) else "/data/foundation"
        check_raw_error(path, answer)
        assert answer.status == 404, (target, answer.body[:300])
    await assert_healthy(aep)


@pytest.mark.parametrize(
    "job_id",
    ["0", "-1", "1.0", "1e3", "9" * 19, "9" * 400, "\u0661", "%FF", "%00", "1%20", "null", "٣"],
)
async def test_odd_job_ids_are_404(aep: Aep, job_id: str) -> None:
    dataset_id = await aep.create_dataset()
    await aep.create_job(dataset_id)
    for method in ("GET", "DELETE"):
        await json_error(await aep.client.request(method, f"{JOBS}/{job_id}", headers=aep.headers()), 404)
    await json_error(await aep.client.post(f"/_emulator/jobs/{job_id}/force", json={"status": "FAILED"}), 404)


# -- headers -------------------------------------------------------------------------------------------


async def test_header_injection_through_x_request_id_cannot_split_the_response(aep: Aep) -> None:
    """CR or LF inside a header value never reaches the app: aiohttp's parser refuses the request (plain
    text 400, connection closed), so nothing is echoed and no header is injected."""
    host, port = aep.client.host, aep.client.port
    base = "".join(f"{k}: {v}\r\n" for k, v in aep.headers().items())
    for value in (b"a\rSet-Cookie: evil=1", b"a\nSet-Cookie: evil=1", b"a\r\n Set-Cookie: evil=1", b"\x00a"):
        request = f"GET {JOBS}/1 HTTP/1.1\r\nHost: x\r\n{base}x-request-id: ".encode() + value + b"\r\n\r\n"
        answer = await raw_http(host, port, request)
        assert answer.status == 400
        assert answer.header("Set-Cookie") is None
        assert answer.header("x-request-id") is None
    await assert_healthy(aep)


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\xfe",  # not UTF-8
        "caf\u00e9".encode(),  # not ASCII
        b"a" * 201,  # too long to echo
        b"has space",
        b"\t",
    ],
)
async def test_an_unsafe_x_request_id_is_replaced_not_echoed(aep: Aep, value: bytes) -> None:
    host, port = aep.client.host, aep.client.port
    base = "".join(f"{k}: {v}\r\n" for k, v in aep.headers().items())
    request = (
        f"GET {JOBS}/424242 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{base}x-request-id: ".encode()
        + value
        + b"\r\n\r\n"
    )
    answer = await raw_http(host, port, request)
    echoed = answer.header("x-request-id")
    body = check_raw_error(JOBS, answer)
    assert echoed is not None
    uuid.UUID(echoed)  # a fresh one of ours
    assert body["requestId"] == echoed


async def test_a_safe_x_request_id_is_echoed_in_the_header_and_body(aep: Aep) -> None:
    value = "req-" + "A1b2-_.~!*" * 19
    response = await aep.client.get(f"{JOBS}/424242", headers={**aep.headers(), "x-request-id": value})
    body = await json_error(response, 404)
    assert response.headers["x-request-id"] == value
    assert body["requestId"] == value
    # ... and becomes the requestId of a job created with it.
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id, headers={"x-request-id": value})
    assert job["requestId"] == value
    replaced_id = await aep.create_job(dataset_id, headers={"x-request-id": "x" * 300})
    uuid.UUID(replaced_id["requestId"])


async def test_unknown_method_tokens_are_refused_by_the_parser(aep: Aep) -> None:
    """llhttp knows a fixed set of methods; anything else is aiohttp's own plain-text 400."""
    host, port = aep.client.host, aep.client.port
    base = "".join(f"{k}: {v}\r\n" for k, v in aep.headers().items())
    for method in ("BREW", "GETS", "get"):
        answer = await raw_http(host, port, f"{method} {JOBS} HTTP/1.1\r\nHost: x\r\n{base}\r\n".encode())
        assert answer.status == 400
    await assert_healthy(aep)


def check_raw_error(path: str, answer: RawResponse) -> Any:
    content_type = (answer.header("Content-Type") or "").split(";")[0].strip()
    return check_error(path, answer.status, content_type, answer.body.decode(), answer.header("x-request-id"))


def route_table() -> dict[str, set[str]]:
    """Every path the app serves and the methods it allows there."""
    table: dict[str, set[str]] = {}
    for method, path, _ in ROUTES:
        table.setdefault(path, set()).add(method)
    return table


async def test_every_unsupported_method_on_every_route_is_405_with_allow(aep: Aep) -> None:
    cases = 0
    for template, allowed in route_table().items():
        path = re.sub(r"\{[a-z_]+\}", "1", template)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"):
            if method in allowed:
                continue
            body_or_none = b"{}" if method in ("POST", "PUT", "PATCH") else None
            response = await aep.client.request(method, path, headers=aep.headers(), data=body_or_none)
            body = await json_error(response, 405)
            assert set(response.headers["Allow"].split(", ")) == allowed, (method, path)
            assert method in message_of(body)
            cases += 1
    assert cases > 50
    await assert_healthy(aep)


async def test_strange_but_valid_http_is_served(aep: Aep) -> None:
    """HTTP/1.0, header names in odd case, folded whitespace and absolute-form targets are fine."""
    host, port = aep.client.host, aep.client.port
    base = "".join(f"{k.upper()}:   {v}  \r\n" for k, v in aep.headers().items())
    for request in (
        f"GET {DATASETS} HTTP/1.0\r\n{base}\r\n",
        f"GET http://{host}:{port}{DATASETS} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{base}\r\n",
    ):
        answer = await raw_http(host, port, request.encode())
        assert answer.status == 200, answer.body[:300]
        assert_matches("dataset.map.response", json.loads(answer.body))


# -- property-based: bodies generated from the request schema ------------------------------------------

# Bounded and derandomized: the same examples on every run, and few enough to keep the suite fast.
PROPERTIES = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JOB_REQUEST = bundled_schemas().documents["export-job.create.request"]


def job_request_schema() -> dict[str, Any]:
    """The create-request schema with its `$ref`s inlined (hypothesis-jsonschema resolves local refs)."""

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(resolve(node))
            return {k: inline(v) for k, v in node.items() if k not in ("$id", "$schema")}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return dict(inline(JOB_REQUEST))


VALID_JOBS = from_schema(job_request_schema())


@pytest.fixture
async def property_client(aep: Aep) -> AsyncIterator[tuple[Aep, str]]:
    """One emulator for all of a property's examples: it must stay healthy through all of them."""
    yield aep, await aep.create_dataset()
    await assert_healthy(aep)


@PROPERTIES
@given(request=VALID_JOBS, use_real_dataset=st.booleans())
async def test_schema_valid_jobs_are_accepted_or_refused_for_their_dataset(
    property_client: tuple[Aep, str], request: dict[str, Any], use_real_dataset: bool
) -> None:
    aep, dataset_id = property_client
    if use_real_dataset:
        request["destination"]["datasetId"] = dataset_id
    response = await send(aep, "POST", JOBS, json.dumps(request).encode())
    event(f"answered {response.status}")  # shown by --hypothesis-show-statistics
    if response.status == 200:
        job = await response.json()
        assert_matches("export-job.response", job)
        polled = await aep.client.get(f"{JOBS}/{job['id']}", headers=aep.headers())
        assert polled.status == 200
        assert_matches("export-job.response", await polled.json())
        return
    error = await json_error(response, 400)
    message = message_of(error)
    # The reasons a schema-valid request may still be refused, each said clearly.
    assert any(
        reason in message
        for reason in (
            "destination.datasetId",  # not a dataset of this tenant
            "segmentPerBatch",  # true without segments
            "RFC 3339",  # a date the pattern allows but the calendar does not
            "mergePolicy.id",  # not a merge policy of this tenant
        )
    ), message
    if "destination.datasetId" in message:
        assert not use_real_dataset


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def mutated_jobs(draw: st.DrawFn) -> Any:
    """A valid body with one value somewhere replaced by arbitrary JSON, or arbitrary JSON outright."""
    if draw(st.booleans()):
        return draw(JSON_VALUES)
    body = draw(VALID_JOBS)
    paths = list(walk(body, JOB_REQUEST))
    if not paths:
        return draw(JSON_VALUES)
    where, _ = draw(st.sampled_from(paths))
    return replaced(body, where, draw(JSON_VALUES))


@PROPERTIES
@given(body=mutated_jobs())
async def test_arbitrary_json_never_fails_the_server(property_client: tuple[Aep, str], body: Any) -> None:
    aep, _ = property_client
    for path in (JOBS, DATASETS):
        response = await send(aep, "POST", path, json.dumps(body).encode())
        assert response.status < 500, await response.text()
        if response.status >= 400:
            await json_error(response)


@PROPERTIES
@given(raw=st.binary(max_size=200))
async def test_arbitrary_bytes_never_fail_the_server(property_client: tuple[Aep, str], raw: bytes) -> None:
    aep, _ = property_client
    for method, path in (("POST", JOBS), ("POST", DATASETS), ("POST", "/_emulator/scenarios")):
        response = await send(aep, method, path, raw)
        assert response.status < 500, await response.text()
        if response.status >= 400:
            await json_error(response)
