"""Small shapes Adobe's own Postman collections read, run against the emulator (issue 13, point 10):
batches carry `availableDates`; batch files carry `data[].size`; a file listing honours `limit` and echoes
it in `_page.limit`. (IMS v2 and the OAuth error shape: tests/api/test_ims.py; Adobe's JSON media types:
tests/api/test_catalog_formats.py.)"""

from __future__ import annotations

from typing import Any

from tests.conftest import Aep

BATCHES = "/data/foundation/catalog/batches"
EXPORT = "/data/foundation/export"


async def finished_batch(aep: Aep) -> tuple[dict[str, Any], str]:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    for _ in range(2):
        job = await aep.get_job(job["id"])
    assert job["status"] == "SUCCEEDED"
    return job, job["destination"]["batchId"]


async def test_batches_carry_available_dates(aep: Aep) -> None:
    # catalog.yaml batchResponse: availableDates {startDate, endDate}, Unix timestamps in seconds.
    dataset_id = await aep.create_dataset()
    live = await aep.create_job(dataset_id)
    batch_id = live["destination"]["batchId"]
    shown = await aep.call("GET", f"{BATCHES}/{batch_id}", status=200, schema="batch.map.response")
    assert shown[batch_id]["availableDates"] == {"startDate": live["creationTime"] // 1000}
    await aep.advance(5)
    await aep.get_job(live["id"])
    done = await aep.get_job(live["id"])
    shown = await aep.call("GET", f"{BATCHES}/{batch_id}", status=200, schema="batch.map.response")
    assert shown[batch_id]["availableDates"] == {
        "startDate": done["creationTime"] // 1000,
        "endDate": done["updateTime"] // 1000,
    }


async def test_batch_files_carry_their_size(aep: Aep) -> None:
    # data-access.yaml dataSetFiles.data.item.size: the file's bytes, as a string.
    _, batch_id = await finished_batch(aep)
    files = await aep.call(
        "GET", f"{EXPORT}/batches/{batch_id}/files", status=200, schema="data-access.batch-files.response"
    )
    for entry in files["data"]:
        listing = await aep.call(
            "GET",
            f"{EXPORT}/files/{entry['dataSetFileId']}",
            status=200,
            schema="data-access.file-listing.response",
        )
        name = listing["data"][0]["name"]
        response = await aep.client.get(
            f"{EXPORT}/files/{entry['dataSetFileId']}", params={"path": name}, headers=aep.headers()
        )
        assert entry["size"] == listing["data"][0]["length"] == str(len(await response.read()))


async def test_file_listing_honours_limit_and_start(aep: Aep) -> None:
    _, batch_id = await finished_batch(aep)
    files = await aep.call("GET", f"{EXPORT}/batches/{batch_id}/files", status=200, schema=None)
    path = f"{EXPORT}/files/{files['data'][0]['dataSetFileId']}"
    default = await aep.call("GET", path, status=200, schema="data-access.file-listing.response")
    assert default["_page"] == {"limit": 100, "count": 1}
    limited = await aep.call("GET", f"{path}?limit=5", status=200, schema="data-access.file-listing.response")
    assert limited["_page"] == {"limit": 5, "count": 1} and limited["data"] == default["data"]
    capped = await aep.call(
        "GET", f"{path}?limit=500", status=200, schema="data-access.file-listing.response"
    )
    assert capped["_page"]["limit"] == 100
    past = await aep.call("GET", f"{path}?start=1", status=200, schema="data-access.file-listing.response")
    assert past["data"] == [] and past["_page"]["count"] == 1
    for query in ("limit=0", "start=-1", "limit=x"):
        await aep.call("GET", f"{path}?{query}", status=400, schema="error.problem")
