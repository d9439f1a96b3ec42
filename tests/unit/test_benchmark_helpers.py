"""Pure helpers of the benchmarks: the offline copy of the OpenAPI document Prism mocks, and how a profile's
samples are filed under the steps of the per-request budget."""

from __future__ import annotations

from pathlib import Path

from benchmarks.peers import offline_document, wiremock_stub
from benchmarks.profile_requests import IDLE, classify


def test_remote_refs_are_renamed_and_local_ones_kept(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "paths:\n"
        "  /x:\n"
        "    get:\n"
        "      responses:\n"
        "        200:\n"
        "          content:\n"
        "            application/json:\n"
        "              schema: {$ref: '#/components/schemas/X'}\n"
        "              example:\n"
        "                definedOn:\n"
        "                  - $ref: https://ns.adobe.com/xdm/context/profile__union\n"
        "                startTime: 2018-01-01T00:00:00Z\n"
    )
    document = offline_document(spec)
    content = document["paths"]["/x"]["get"]["responses"][200]["content"]["application/json"]
    assert content["schema"] == {"$ref": "#/components/schemas/X"}
    assert content["example"]["definedOn"] == [{"x-ref": "https://ns.adobe.com/xdm/context/profile__union"}]
    assert content["example"]["startTime"] == "2018-01-01T00:00:00Z"  # not turned into a datetime


def test_the_wiremock_stub_answers_both_job_calls() -> None:
    mappings = wiremock_stub()["mappings"]
    assert {m["request"]["method"] for m in mappings} == {"GET", "POST"}
    post = next(m for m in mappings if m["request"]["method"] == "POST")
    assert post["response"]["headers"]["X-Location"].startswith("/data/core/ups/export/jobs/")


def test_a_sample_belongs_to_its_innermost_emulator_step() -> None:
    dispatcher = "Dispatcher.handle (emulator/api/dispatch.py:87)"
    admit = "admission.<locals>.admit (emulator/gateway.py:70)"
    headers = "BaseRequest.headers (aiohttp/web_request.py:500)"
    handle = "RequestHandler._handle_request (aiohttp/web_protocol.py:563)"
    assert classify(";".join([handle, dispatcher, admit, headers])) == "gateway admission"
    assert classify(";".join([handle, dispatcher])) == "dispatcher: the rest"
    assert classify(";".join(["RequestHandler.start (aiohttp/web_protocol.py:600)"])) == (
        "aiohttp: request parsing and dispatch"
    )
    assert (
        classify(
            "BaseEventLoop._run_once (asyncio/base_events.py:1884);EpollSelector.select (selectors.py:468)"
        )
        == IDLE
    )
