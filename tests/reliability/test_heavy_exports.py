"""Heavy exports (issue 12, finding 5 and the export parts of 9 and 11): files are rendered off the event
loop, one render per file however many ask at once, never again for a listing or a HEAD; a batch's files
are paged without making the others; what one request may ask for is capped with a clear 400; Range and
If-Range hold against absurd or foreign input; tenants never share a population by accident."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.api.common import BACKEND
from emulator.exportdata import service as service_module
from emulator.exportlimits import (
    MAX_BATCHES,
    MAX_EVALUATIONS,
    MAX_FIELD_DEPTH,
    MAX_FIELD_PATHS,
    MAX_FIELDS_LENGTH,
    MAX_FILE_EVENTS,
    MAX_FILE_MEMBERSHIPS,
    MAX_FILE_ROWS,
    MAX_SEGMENTS,
)
from emulator.options import Options
from tests.api.test_export_data_flow import (
    EXPORT,
    add_scenario,
    batch_files,
    batch_ids,
    download,
    file_name,
    succeeded_export,
)
from tests.conftest import START_MS, Aep, assert_matches
from tests.reliability.conftest import message_of

JOBS = "/data/core/ups/export/jobs"
# Bounded wait for a condition that, before the fix, never came (the render held the event loop).
RELEASE_WITHIN_SECONDS = 10.0


@pytest.fixture
def options() -> Options:
    # Nothing kept in the byte cache: a file's every fetch would render it, but for what this fixes.
    return Options(clock="manual", start_time_ms=START_MS, file_cache_bytes=0)


async def one_file(client: TestClient[Any, Any], aep: Aep, **scenario: Any) -> tuple[str, str]:
    """(dataSetFileId, name) of the first file of a succeeded export under a scenario made of `scenario`."""
    await add_scenario(client, "heavy", **scenario)
    job = await succeeded_export(aep, await aep.create_dataset(), "heavy")
    (batch_id,) = batch_ids(job)
    file_id = (await batch_files(aep, batch_id, limit=1))["data"][0]["dataSetFileId"]
    return file_id, await file_name(aep, file_id)


def generated(client: TestClient[Any, Any]) -> int:
    return int(client.server.app[BACKEND].exports.generated_files)


async def get(aep: Aep, path: str, method: str = "GET", **headers: str) -> Any:
    return await aep.client.request(method, path, headers={**aep.headers(), **headers})


# -- finding 5: off the loop, one render, never again for metadata ------------------------------------


async def test_a_render_does_not_hold_the_event_loop(
    client: TestClient[Any, Any], aep: Aep, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a file renders, the health check answers. Before: the render ran on the loop, so the health
    check could not run until the render gave up waiting for it."""
    file_id, name = await one_file(client, aep, count=40)
    real_render = service_module.render
    started, released = threading.Event(), threading.Event()
    outcome: list[bool] = []

    def slow_render(*args: Any) -> bytes:
        started.set()
        outcome.append(released.wait(RELEASE_WITHIN_SECONDS))
        return real_render(*args)

    monkeypatch.setattr(service_module, "render", slow_render)
    download_task = asyncio.ensure_future(
        get(aep, f"{EXPORT}/files/{file_id}?path={name}", Range="bytes=0-3")
    )
    while not started.is_set() and not download_task.done():
        await asyncio.sleep(0)  # yield to the loop until the render has begun
    health = await aep.client.get("/_emulator/health")
    assert health.status == 200
    released.set()
    response = await download_task
    assert response.status == 206 and len(await response.read()) == 4
    assert outcome == [True], "the health check was answered only after the render had given up"


@pytest.mark.parametrize("reader", ["job", "job list", "batch", "batch list", "control jobs"])
async def test_counting_an_export_does_not_hold_the_event_loop(
    client: TestClient[Any, Any], aep: Aep, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    """A SUCCEEDED job's counters and its batch's recordCount count the population (0.3 s for a million
    profiles, minutes for a hundred million): off the loop. Before, the poll that saw SUCCEEDED counted
    on the loop and nothing else was served meanwhile."""
    await add_scenario(client, "counted", count=40)
    job = await aep.create_job(await aep.create_dataset(), headers={"x-emulator-scenario": "counted"})
    await aep.get_job(job["id"])  # PROCESSING; the next poll sees SUCCEEDED
    (batch_id,) = batch_ids(job)
    if reader != "job":
        await aep.get_job(job["id"])  # SUCCEEDED (counted now)...
        client.server.app[BACKEND].exports.reset()  # ...and forgotten: the reader counts it again
    real_plan = service_module.make_plan
    started, released = threading.Event(), threading.Event()
    outcome: list[bool] = []

    def slow_plan(*args: Any) -> Any:
        started.set()
        outcome.append(released.wait(RELEASE_WITHIN_SECONDS))
        return real_plan(*args)

    monkeypatch.setattr(service_module, "make_plan", slow_plan)
    paths = {
        "job": f"{JOBS}/{job['id']}",
        "job list": JOBS,
        "batch": f"/data/foundation/catalog/batches/{batch_id}",
        "batch list": "/data/foundation/catalog/batches",
        "control jobs": "/_emulator/jobs?all=true",
    }
    reading = asyncio.ensure_future(get(aep, paths[reader]))
    while not started.is_set() and not reading.done():
        await asyncio.sleep(0)
    health = await aep.client.get("/_emulator/health")
    assert health.status == 200
    released.set()
    response = await reading
    assert response.status == 200, await response.text()
    assert outcome and all(outcome), "the health check was answered only after the counting had given up"
    assert "40" in await response.text()  # the counters (or recordCount) are there


async def test_concurrent_downloads_of_a_file_share_one_render(
    client: TestClient[Any, Any], aep: Aep, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six downloads arrive while the file renders: one render serves them all (nothing is cached here)."""
    file_id, name = await one_file(client, aep, count=40)
    exports = client.server.app[BACKEND].exports
    real_render, real_content = service_module.render, exports.content
    released = threading.Event()
    renders: list[bool] = []
    fetches: list[int] = []

    def held_render(*args: Any) -> bytes:
        renders.append(released.wait(RELEASE_WITHIN_SECONDS))
        return real_render(*args)

    def counted_content(*args: Any) -> Any:
        fetches.append(1)
        return real_content(*args)

    monkeypatch.setattr(service_module, "render", held_render)
    monkeypatch.setattr(exports, "content", counted_content)
    downloads = [asyncio.ensure_future(get(aep, f"{EXPORT}/files/{file_id}?path={name}")) for _ in range(6)]
    while len(fetches) < 6 and not all(d.done() for d in downloads):
        await asyncio.sleep(0)  # until every download waits for the file
    released.set()
    responses = await asyncio.gather(*downloads)
    assert all(r.status == 200 for r in responses)
    assert len({await r.read() for r in responses}) == 1
    assert renders == [True]


async def test_listings_and_heads_never_render_a_file_again(client: TestClient[Any, Any], aep: Aep) -> None:
    """A file past the byte cache: its length is known after one render. Before: every listing and HEAD
    rendered it again (6-7 s each for a 118 MB file)."""
    file_id, name = await one_file(client, aep, count=40)
    assert generated(client) == 1
    for _ in range(3):
        listing = await aep.call(
            "GET", f"{EXPORT}/files/{file_id}", status=200, schema="data-access.file-listing.response"
        )
        head = await get(aep, f"{EXPORT}/files/{file_id}?path={name}", "HEAD")
        assert head.status == 200
        assert head.headers["Content-Length"] == listing["data"][0]["length"]
    assert generated(client) == 1
    whole = await get(aep, f"{EXPORT}/files/{file_id}?path={name}")
    assert str(len(await whole.read())) == listing["data"][0]["length"]


async def test_a_page_of_batch_files_makes_only_its_files(
    client: TestClient[Any, Any], aep: Aep, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`maxRecordsPerFile: 1`: a batch of thousands of files. Before: every listing made every file's
    object (2M of them, 18.5 s, for 2M profiles)."""
    await add_scenario(client, "one-per-file", count=3000, max_records=1)
    job = await succeeded_export(aep, await aep.create_dataset(), "one-per-file")
    (batch_id,) = batch_ids(job)
    made: list[int] = []
    real = service_module.ExportFile

    def counted(*args: Any) -> Any:
        made.append(1)
        return real(*args)

    monkeypatch.setattr(service_module, "ExportFile", counted)
    page = await batch_files(aep, batch_id, start=2500, limit=1)
    assert page["_page"] == {"limit": 1, "count": 3000}
    assert page["data"][0]["dataSetFileId"].endswith("-2501")
    assert page["_links"]["next"]["href"].endswith("?start=2501&limit=1")
    assert len(made) == 1
    beyond = await batch_files(aep, batch_id, start=10**9, limit=100)
    assert beyond["data"] == [] and beyond["_page"]["count"] == 3000


# -- finding 5 and 9: caps at job creation -----------------------------------------------------------


async def refused(aep: Aep, scenario: str | None = None, **fields: Any) -> str:
    body = {
        "destination": {"datasetId": await aep.create_dataset()},
        "schema": {"name": "_xdm.context.profile"},
        **fields,
    }
    headers = {"x-emulator-scenario": scenario} if scenario else {}
    answer = await aep.call("POST", JOBS, json=body, status=400, schema="error.ups", headers=headers)
    return message_of(answer)


def segments(n: int) -> list[dict[str, str]]:
    return [{"segmentId": f"segment-{i}"} for i in range(n)]


async def test_too_many_segments_is_a_400(client: TestClient[Any, Any], aep: Aep) -> None:
    message = await refused(aep, filter={"segments": segments(MAX_SEGMENTS + 1)})
    assert f"at most {MAX_SEGMENTS}" in message and "filter.segments" in message
    await aep.create_job(await aep.create_dataset(), filter={"segments": segments(MAX_SEGMENTS)})


async def test_too_many_batches_is_a_400(client: TestClient[Any, Any], aep: Aep) -> None:
    message = await refused(
        aep,
        filter={"segments": segments(MAX_BATCHES + 1)},
        destination={"datasetId": await aep.create_dataset(), "segmentPerBatch": True},
    )
    assert f"at most {MAX_BATCHES}" in message and "segmentPerBatch" in message


async def test_too_much_counting_work_is_a_400(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "big", count=MAX_EVALUATIONS // 10, empty=0, max_records=1000)
    message = await refused(aep, "big", filter={"segments": segments(11)})
    assert f"at most {MAX_EVALUATIONS}" in message


async def test_files_too_big_to_render_are_a_400(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "huge-files", count=MAX_FILE_ROWS + 1, max_records=MAX_FILE_ROWS + 1)
    assert f"at most {MAX_FILE_ROWS}" in await refused(aep, "huge-files")

    await add_scenario(client, "many-events", count=1000, events=(1000, 1000))
    eventful = {"additionalFields": {"eventList": {"fields": "_id"}}}
    assert f"at most {MAX_FILE_EVENTS}" in await refused(aep, "many-events", **eventful)
    await aep.create_job(
        await aep.create_dataset(), headers={"x-emulator-scenario": "many-events"}
    )  # without eventList the events are not written

    await add_scenario(
        client, "wide", count=MAX_FILE_MEMBERSHIPS // 10, max_records=MAX_FILE_MEMBERSHIPS // 10
    )
    assert f"at most {MAX_FILE_MEMBERSHIPS}" in await refused(aep, "wide", filter={"segments": segments(8)})


@pytest.mark.parametrize(
    "fields,cap",
    [
        (  # the reported one: two 1,000-level paths under segmentMembership
            "segmentMembership.ups" + ".a" * 997 + ".b,segmentMembership.other" + ".a" * 997 + ".c",
            MAX_FIELD_DEPTH,
        ),
        (",".join(f"f{i}" for i in range(MAX_FIELD_PATHS + 1)), MAX_FIELD_PATHS),
        ("a" * (MAX_FIELDS_LENGTH + 1), MAX_FIELDS_LENGTH),
    ],
)
async def test_unbounded_fields_are_a_400(
    client: TestClient[Any, Any], aep: Aep, fields: str, cap: int
) -> None:
    assert f"at most {cap}" in await refused(aep, fields=fields)
    eventful = {"additionalFields": {"eventList": {"fields": fields}}}
    assert f"at most {cap}" in await refused(aep, **eventful)


# -- finding 9 and 11: Range and If-Range -------------------------------------------------------------


async def test_absurd_and_foreign_ranges_are_4xx_not_500(client: TestClient[Any, Any], aep: Aep) -> None:
    file_id, name = await one_file(client, aep, count=40)
    url = f"{EXPORT}/files/{file_id}?path={name}"
    whole = await (await get(aep, url)).read()
    nines = "9" * 5000
    past_the_end = await get(aep, url, Range=f"bytes={nines}-")
    assert past_the_end.status == 416, await past_the_end.text()
    assert past_the_end.headers["Content-Range"] == f"*/{len(whole)}".join(["bytes ", ""])
    assert_matches("error.problem", await past_the_end.json())
    to_the_end = await get(aep, url, Range=f"bytes=1-{nines}")
    assert to_the_end.status == 206 and await to_the_end.read() == whole[1:]
    suffix = await get(aep, url, Range=f"bytes=-{nines}")
    assert suffix.status == 206 and await suffix.read() == whole
    for foreign in ("bytes=\u0661-\u0662", "bytes=\uff10-\uff11"):  # Arabic-Indic and full-width digits
        response = await aep.client.get(
            url, headers={**aep.headers(), "Range": foreign.encode().decode("latin-1")}
        )
        assert response.status == 400, await response.text()
        assert_matches("error.problem", await response.json())


async def test_if_range_is_honoured(client: TestClient[Any, Any], aep: Aep) -> None:
    """RFC 9110 §13.1.5: the range only when the validator is the file's; otherwise the whole file."""
    file_id, name = await one_file(client, aep, count=40)
    url = f"{EXPORT}/files/{file_id}?path={name}"
    first = await get(aep, url)
    whole = await first.read()
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and etag.endswith('"')
    head = await get(aep, url, "HEAD")
    assert head.headers["ETag"] == etag and head.headers["Last-Modified"] == modified
    for validator in (etag, modified):
        partial = await get(aep, url, Range="bytes=0-9", **{"If-Range": validator})
        assert partial.status == 206 and await partial.read() == whole[:10]
    for stale in ('"another"', f"W/{etag}", "Sat, 01 Jan 2000 00:00:00 GMT", "not a date"):
        full = await get(aep, url, Range="bytes=0-9", **{"If-Range": stale})
        assert full.status == 200 and await full.read() == whole
        assert "Content-Range" not in full.headers


async def test_other_files_have_other_etags(client: TestClient[Any, Any], aep: Aep) -> None:
    await add_scenario(client, "two-files", count=40, max_records=25)
    job = await succeeded_export(aep, await aep.create_dataset(), "two-files")
    (batch_id,) = batch_ids(job)
    tags = set()
    for entry in (await batch_files(aep, batch_id))["data"]:
        name = await file_name(aep, entry["dataSetFileId"])
        response = await get(aep, f"{EXPORT}/files/{entry['dataSetFileId']}?path={name}", "HEAD")
        tags.add(response.headers["ETag"])
    assert len(tags) == 2


# -- finding 11: tenants' populations ----------------------------------------------------------------


async def test_org_and_sandbox_with_slashes_do_not_share_a_population(client: TestClient[Any, Any]) -> None:
    """Org `X/Y` with sandbox `Z` and org `X` with sandbox `Y/Z`: before, both were keyed `X/Y/Z`."""
    contents = []
    for org, sandbox in (("X/Y@AdobeOrg", "Z"), ("X", "Y@AdobeOrg/Z")):
        aep = Aep(client, org=org, sandbox=sandbox)
        job = await succeeded_export(aep, await aep.create_dataset())
        (batch_id,) = batch_ids(job)
        file_id = (await batch_files(aep, batch_id))["data"][0]["dataSetFileId"]
        contents.append(await download(aep, file_id))
    assert contents[0] != contents[1]
