"""Data Access: paging a batch's files, a file's listing, downloads with Range and HEAD, bad input, tenancy
and scenario faults."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.test_export_data_flow import (
    EXPORT,
    add_scenario,
    all_file_ids,
    batch_files,
    batch_ids,
    file_name,
    succeeded_export,
)
from tests.conftest import OTHER_ORG, Aep, assert_matches


async def exported_files(client: TestClient[Any, Any], aep: Aep, *, files: int = 5) -> tuple[str, list[str]]:
    """A succeeded export of `files` files of 10 rows; returns its batch id and file ids."""
    await add_scenario(client, "paged", count=10 * files - 3, max_records=10)
    dataset_id = await aep.create_dataset()
    job = await succeeded_export(aep, dataset_id, "paged")
    (batch_id,) = batch_ids(job)
    return batch_id, await all_file_ids(aep, batch_id)


async def fetch(
    aep: Aep, file_id: str, path: str | None, *, method: str = "GET", headers: dict[str, str] | None = None
) -> Any:
    params = {} if path is None else {"path": path}
    return await aep.client.request(
        method, f"{EXPORT}/files/{file_id}", params=params, headers={**aep.headers(), **(headers or {})}
    )


async def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    assert_matches("error.problem", body)
    assert body["status"] == status
    return body


# -- a batch's files ---------------------------------------------------------------------------------


async def test_batch_files_are_paged_with_start_and_limit(client: TestClient[Any, Any], aep: Aep) -> None:
    batch_id, ids = await exported_files(client, aep, files=5)
    assert len(ids) == len(set(ids)) == 5

    first = await batch_files(aep, batch_id, limit=2)
    assert [f["dataSetFileId"] for f in first["data"]] == ids[:2]
    assert first["_page"] == {"limit": 2, "count": 5}
    links = first["_links"]
    assert links["next"]["href"].endswith(f"{EXPORT}/batches/{batch_id}/files?start=2&limit=2")
    assert links["page"] == {"href": links["page"]["href"], "templated": True}
    assert links["page"]["href"].endswith("?start=0&limit=2")

    middle = await batch_files(aep, batch_id, start=2, limit=2)
    assert [f["dataSetFileId"] for f in middle["data"]] == ids[2:4]
    last = await batch_files(aep, batch_id, start=4, limit=2)
    assert [f["dataSetFileId"] for f in last["data"]] == ids[4:]
    assert "next" not in last["_links"]
    beyond = await batch_files(aep, batch_id, start=9)
    assert beyond["data"] == [] and beyond["_page"]["count"] == 5


async def test_batch_files_limit_is_clamped_to_100(client: TestClient[Any, Any], aep: Aep) -> None:
    batch_id, _ = await exported_files(client, aep, files=2)
    assert (await batch_files(aep, batch_id, limit=5000))["_page"] == {"limit": 100, "count": 2}


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "two"}, {"start": "-1"}, {"start": "1.5"}])
async def test_bad_paging_parameters_are_400(
    client: TestClient[Any, Any], aep: Aep, query: dict[str, str]
) -> None:
    batch_id, _ = await exported_files(client, aep, files=1)
    body = await batch_files(aep, batch_id, status=400, **query)
    assert next(iter(query)) in body["detail"]


async def test_each_file_holds_its_records_and_ids_derive_from_the_batch(
    client: TestClient[Any, Any], aep: Aep
) -> None:
    batch_id, ids = await exported_files(client, aep, files=3)
    listed = await batch_files(aep, batch_id)
    assert [f["records"] for f in listed["data"]] == ["10", "10", "7"]
    assert all(batch_id == file_id.rsplit("-", 1)[0].replace("-", "") for file_id in ids)
    assert [file_id.rsplit("-", 1)[1] for file_id in ids] == ["1", "2", "3"]


async def test_an_unknown_batch_is_404(aep: Aep) -> None:
    await batch_files(aep, "0123456789abcdef0123456789abcdef", status=404)


# -- a file ------------------------------------------------------------------------------------------


async def test_range_gives_206_with_content_range(client: TestClient[Any, Any], aep: Aep) -> None:
    _, ids = await exported_files(client, aep, files=1)
    name = await file_name(aep, ids[0])
    whole = await (await fetch(aep, ids[0], name)).read()
    size = len(whole)
    assert whole[:4] == b"PAR1" and whole[-4:] == b"PAR1"
    for header, first, last in [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, size - 1),
        ("bytes=-10", size - 10, size - 1),
        ("bytes=5-99999999", 5, size - 1),
        (f"bytes=-{size + 50}", 0, size - 1),
    ]:
        response = await fetch(aep, ids[0], name, headers={"Range": header})
        assert response.status == 206, header
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert response.headers["Accept-Ranges"] == "bytes"
        assert response.headers["Content-Type"] == "application/parquet"
        assert int(response.headers["Content-Length"]) == last - first + 1
        assert await response.read() == whole[first : last + 1]


async def test_several_ranges_get_the_whole_file(client: TestClient[Any, Any], aep: Aep) -> None:
    _, ids = await exported_files(client, aep, files=1)
    name = await file_name(aep, ids[0])
    response = await fetch(aep, ids[0], name, headers={"Range": "bytes=0-1, 4-5"})
    assert response.status == 200 and "Content-Range" not in response.headers
    assert await response.read() == await (await fetch(aep, ids[0], name)).read()


async def test_a_range_beyond_the_end_is_416_json(client: TestClient[Any, Any], aep: Aep) -> None:
    _, ids = await exported_files(client, aep, files=1)
    name = await file_name(aep, ids[0])
    size = len(await (await fetch(aep, ids[0], name)).read())
    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        response = await fetch(aep, ids[0], name, headers={"Range": header})
        body = await problem(response, 416)
        assert response.headers["Content-Range"] == f"bytes */{size}"
        assert "x-request-id" in response.headers
        assert body["title"] == "RangeNotSatisfiableError"


@pytest.mark.parametrize(
    "header", ["bytes=abc", "bytes=9-2", "bytes=", "bytes=-", "items=0-5", "0-5", "bytes=1-2-3"]
)
async def test_a_malformed_range_is_400(client: TestClient[Any, Any], aep: Aep, header: str) -> None:
    _, ids = await exported_files(client, aep, files=1)
    name = await file_name(aep, ids[0])
    body = await problem(await fetch(aep, ids[0], name, headers={"Range": header}), 400)
    assert "Range" in body["detail"]


async def test_head_gives_the_file_headers_without_a_body(client: TestClient[Any, Any], aep: Aep) -> None:
    _, ids = await exported_files(client, aep, files=1)
    listing = await aep.call(
        "GET", f"{EXPORT}/files/{ids[0]}", status=200, schema="data-access.file-listing.response"
    )
    name, length = listing["data"][0]["name"], listing["data"][0]["length"]
    response = await fetch(aep, ids[0], name, method="HEAD", headers={"Range": "bytes=0-9"})
    assert response.status == 200  # HEAD describes the whole file
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "application/parquet"
    assert response.headers["Content-Length"] == length
    assert await response.read() == b""
    assert (await fetch(aep, ids[0], "other.parquet", method="HEAD")).status == 404
    assert (await fetch(aep, ids[0], None, method="HEAD")).status == 400


@pytest.mark.parametrize(
    "path",
    [
        "profiles.parquet",
        "../../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "/etc/passwd",
        "{name}/../{name}",
        "./{name}",
        "{name}\x00",
        "{NAME}",
        "",
    ],
)
async def test_a_path_that_is_not_the_files_name_is_404(
    client: TestClient[Any, Any], aep: Aep, path: str
) -> None:
    _, ids = await exported_files(client, aep, files=1)
    name = await file_name(aep, ids[0])
    asked = path.replace("{name}", name).replace("{NAME}", name.upper())
    await problem(await fetch(aep, ids[0], asked), 404)


@pytest.mark.parametrize(
    "file_id",
    [
        "nope",
        "{batch}-9",
        "{batch}-0",
        "{batch}-01",
        "{batch}",
        "{batch}-1-1",
        "00000000-0000-0000-0000-000000000000-1",
        "-1",
    ],
)
async def test_an_unknown_file_id_is_404(client: TestClient[Any, Any], aep: Aep, file_id: str) -> None:
    _, ids = await exported_files(client, aep, files=2)
    batch = ids[0].rsplit("-", 1)[0]
    asked = file_id.replace("{batch}", batch)
    await problem(await fetch(aep, asked, None), 404)
    await problem(await fetch(aep, asked, "x.parquet"), 404)


async def test_files_of_a_processing_batch_are_404(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    batch_id = batch_ids(job)[0]
    await problem(await fetch(aep, f"{batch_id}-1", None), 404)
    await problem(
        await fetch(
            aep,
            f"{batch_id[:8]}-{batch_id[8:12]}-{batch_id[12:16]}-{batch_id[16:20]}-{batch_id[20:]}-1",
            None,
        ),
        404,
    )


async def test_other_methods_on_data_access_paths_are_405(client: TestClient[Any, Any], aep: Aep) -> None:
    batch_id, ids = await exported_files(client, aep, files=1)
    for path in (f"{EXPORT}/files/{ids[0]}", f"{EXPORT}/batches/{batch_id}/files"):
        response = await client.delete(path, headers=aep.headers())
        await problem(response, 405)
        assert "GET" in response.headers["Allow"]


async def test_data_access_is_behind_the_gateway(client: TestClient[Any, Any], aep: Aep) -> None:
    batch_id, ids = await exported_files(client, aep, files=1)
    headers = {k: v for k, v in aep.headers().items() if k != "Authorization"}
    for path in (f"{EXPORT}/batches/{batch_id}/files", f"{EXPORT}/files/{ids[0]}"):
        response = await client.get(path, headers=headers)
        assert response.status == 401
        assert_matches("error.gateway", await response.json())


# -- tenancy -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "intruder", [{"org": OTHER_ORG, "sandbox": "prod"}, {"org": "TESTORG@AdobeOrg", "sandbox": "dev"}]
)
async def test_another_tenant_cannot_see_or_download_the_files(
    client: TestClient[Any, Any], aep: Aep, intruder: dict[str, str]
) -> None:
    batch_id, ids = await exported_files(client, aep, files=1)
    name = await file_name(aep, ids[0])
    other = Aep(client, **intruder)
    await batch_files(other, batch_id, status=404)
    await problem(await fetch(other, ids[0], None), 404)
    await problem(await fetch(other, ids[0], name), 404)
    await problem(await fetch(other, ids[0], name, headers={"Range": "bytes=0-9"}), 404)
    assert (await fetch(other, ids[0], name, method="HEAD")).status == 404
    # The owner still can.
    assert (await fetch(aep, ids[0], name)).status == 200


async def test_a_tenant_reset_forgets_its_files(client: TestClient[Any, Any], aep: Aep) -> None:
    batch_id, ids = await exported_files(client, aep, files=1)
    response = await client.post("/_emulator/reset", params={"org": aep.org, "sandbox": aep.sandbox})
    assert response.status == 200
    await batch_files(aep, batch_id, status=404)
    await problem(await fetch(aep, ids[0], None), 404)


# -- scenario faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["list_batch_files", "list_files", "download_file"])
async def test_scenario_faults_hit_the_data_access_operations(
    client: TestClient[Any, Any], aep: Aep, operation: str
) -> None:
    fault = {"operation": operation, "times": 2, "respond": {"status": 503, "headers": {"Retry-After": "1"}}}
    await add_scenario(client, "faulty", count=5, faults=[fault])
    dataset_id = await aep.create_dataset()
    job = await succeeded_export(aep, dataset_id, "faulty")
    batch_id = batch_ids(job)[0]
    file_id = f"{batch_id[:8]}-{batch_id[8:12]}-{batch_id[12:16]}-{batch_id[16:20]}-{batch_id[20:]}-1"
    name = f"part-00000-{file_id[:-2]}-c000.snappy.parquet"
    calls = {
        "list_batch_files": lambda: aep.client.get(
            f"{EXPORT}/batches/{batch_id}/files", headers=aep.headers()
        ),
        "list_files": lambda: fetch(aep, file_id, None),
        "download_file": lambda: fetch(aep, file_id, name),
    }
    for _ in range(2):
        response = await calls[operation]()
        await problem(response, 503)
        assert response.headers["Retry-After"] == "1"
    assert (await calls[operation]()).status == 200
    # The other operations were never affected.
    for other, call in calls.items():
        if other != operation:
            assert (await call()).status == 200
