"""Listing export jobs: order, limit, cursor and integer paging, start/page, sort, status, trailing slash."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import START_MS, Aep, assert_matches

JOBS = "/data/core/ups/export/jobs"
UPS = "/data/core/ups"


async def make_jobs(
    aep: Aep, count: int, *, seconds_apart: float = 1, scenario: str = "success"
) -> list[int]:
    """`count` jobs, created `seconds_apart` apart on the manual clock; their ids, oldest first."""
    dataset_id = await aep.create_dataset()
    ids = []
    for index in range(count):
        if index and seconds_apart:
            await aep.advance(seconds_apart)
        job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": scenario})
        ids.append(job["id"])
    return ids


async def listing(aep: Aep, query: str = "", path: str = JOBS) -> Any:
    separator = "?" if query else ""
    return await aep.call("GET", f"{path}{separator}{query}", status=200, schema="export-job.list.response")


async def walk(aep: Aep, first_query: str, between: Any = None) -> list[list[int]]:
    """Every page's ids, following link.next until it is empty; `between` runs after each page."""
    pages = []
    body = await listing(aep, first_query)
    while True:
        pages.append([job["id"] for job in body["records"]])
        last = body["records"][-1] if body["records"] else None
        assert body["page"]["pageSize"] == len(body["records"])
        if last is not None:
            time_ms = (
                last["updateTime"] if body["page"]["sortField"] == "updateTime" else last["creationTime"]
            )
            assert body["page"]["pageOffset"] == f"{time_ms}_{last['id']}"
        if not body["link"]["next"]:
            return pages
        assert len(pages) < 100, "link.next never ran out"
        if between is not None:
            await between()
        body = await aep.call(
            "GET", UPS + body["link"]["next"], status=200, schema="export-job.list.response"
        )


async def force(aep: Aep, job_id: int, status: str) -> None:
    response = await aep.client.post(f"/_emulator/jobs/{job_id}/force", json={"status": status})
    forced = await response.json()
    assert response.status == 200, forced
    assert_matches("control.job.response", forced)
    assert forced["job"]["status"] == status


async def test_empty_list(aep: Aep) -> None:
    body = await listing(aep)
    assert body == {
        "records": [],
        "page": {"sortField": "createdTime", "sort": "desc", "pageOffset": "", "pageSize": 0},
        "link": {"next": ""},
    }


async def test_newest_first(aep: Aep) -> None:
    ids = await make_jobs(aep, 4)
    body = await listing(aep)
    assert [job["id"] for job in body["records"]] == ids[::-1]
    times = [job["creationTime"] for job in body["records"]]
    assert times == [START_MS + 3000, START_MS + 2000, START_MS + 1000, START_MS]
    assert body["page"] == {
        "sortField": "createdTime",
        "sort": "desc",
        "pageOffset": f"{START_MS}_{ids[0]}",
        "pageSize": 4,
    }
    assert body["link"] == {"next": ""}


async def test_same_instant_orders_by_id(aep: Aep) -> None:
    ids = await make_jobs(aep, 3, seconds_apart=0)
    assert [job["id"] for job in (await listing(aep))["records"]] == ids[::-1]


async def test_listing_does_not_count_as_a_poll(aep: Aep) -> None:
    [job_id] = await make_jobs(aep, 1)
    for _ in range(3):
        assert (await listing(aep))["records"][0]["status"] == "NEW"
    assert (await aep.get_job(job_id))["status"] == "PROCESSING"


async def test_default_limit_is_50(aep: Aep) -> None:
    ids = await make_jobs(aep, 51, seconds_apart=0)
    body = await listing(aep)
    assert [job["id"] for job in body["records"]] == ids[:0:-1]
    assert body["page"]["pageSize"] == 50
    assert body["link"]["next"] == f"/export/jobs/?limit=50&offset={START_MS}_{ids[1]}"
    rest = await aep.call("GET", UPS + body["link"]["next"], status=200, schema="export-job.list.response")
    assert [job["id"] for job in rest["records"]] == [ids[0]]
    assert rest["link"]["next"] == ""


async def test_huge_limit_is_clamped_to_1000(aep: Aep) -> None:
    ids = await make_jobs(aep, 1001, seconds_apart=0)
    first = await listing(aep, "limit=1000")
    assert [j["id"] for j in first["records"]] == ids[:0:-1]
    assert first["page"]["pageSize"] == 1000
    assert first["link"]["next"] == f"/export/jobs/?limit=1000&offset={START_MS}_{ids[1]}"
    for limit in ("1001", "5000", "99999999999999999999999"):
        response = await aep.client.get(f"{JOBS}?limit={limit}", headers=aep.headers())
        assert response.status == 200
        # Identical to the (schema-checked) page of 1000, next link included.
        assert await response.json() == first, limit


@pytest.mark.parametrize("limit", ["abc", "0", "-1", "1.5", "1e3", "0x10"])
async def test_bad_limit_is_400(aep: Aep, limit: str) -> None:
    error = await aep.call("GET", f"{JOBS}?limit={limit}", status=400, schema="error.ups")
    assert "limit" in error["errors"]["400"][0]["message"]


async def test_cursor_paging_walks_every_job_once(aep: Aep) -> None:
    ids = await make_jobs(aep, 7)
    dataset_id = await aep.create_dataset()
    created_later: list[int] = []

    async def create_another() -> None:
        # Newer jobs sort before the cursor: they must neither appear nor shift the walk.
        await aep.advance(1)
        created_later.append((await aep.create_job(dataset_id))["id"])

    pages = await walk(aep, "limit=2", between=create_another)
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [job_id for page in pages for job_id in page] == ids[::-1]
    assert len(created_later) == 3
    # The new jobs are there for a fresh listing.
    assert [job["id"] for job in (await listing(aep, "limit=3"))["records"]] == created_later[::-1]


async def test_cursor_paging_when_all_jobs_share_an_instant(aep: Aep) -> None:
    ids = await make_jobs(aep, 5, seconds_apart=0)
    pages = await walk(aep, "limit=2")
    assert [job_id for page in pages for job_id in page] == ids[::-1]


async def test_last_full_page_has_no_next_link(aep: Aep) -> None:
    ids = await make_jobs(aep, 4)
    pages = await walk(aep, "limit=2")
    assert pages == [ids[:1:-1], ids[1::-1]]


async def test_integer_offset_skips(aep: Aep) -> None:
    ids = await make_jobs(aep, 5)
    newest_first = ids[::-1]
    assert [j["id"] for j in (await listing(aep, "offset=2"))["records"]] == newest_first[2:]
    assert [j["id"] for j in (await listing(aep, "offset=0"))["records"]] == newest_first
    assert [j["id"] for j in (await listing(aep, "offset=1&limit=2"))["records"]] == newest_first[1:3]
    assert (await listing(aep, "offset=5"))["records"] == []


async def test_cursor_offset_from_the_documented_form(aep: Aep) -> None:
    ids = await make_jobs(aep, 3)
    # <creationTimeMs>_<id> of the middle job: only the older one follows.
    body = await listing(aep, f"offset={START_MS + 1000}_{ids[1]}")
    assert [j["id"] for j in body["records"]] == [ids[0]]
    # A cursor past everything returns every job.
    body = await listing(aep, f"offset={START_MS + 10**9}_1")
    assert [j["id"] for j in body["records"]] == ids[::-1]


@pytest.mark.parametrize("offset", ["abc", "-1", "1_", "_1", "1_2_3", "1.5", "1_x", "%C2%B2_1"])
async def test_bad_offset_is_400(aep: Aep, offset: str) -> None:
    error = await aep.call("GET", f"{JOBS}?offset={offset}", status=400, schema="error.ups")
    assert "offset" in error["errors"]["400"][0]["message"]


async def test_start_and_page(aep: Aep) -> None:
    ids = await make_jobs(aep, 6)
    newest_first = ids[::-1]
    assert [j["id"] for j in (await listing(aep, "start=3"))["records"]] == newest_first[3:]
    assert [j["id"] for j in (await listing(aep, "start=1&limit=2"))["records"]] == newest_first[1:3]
    assert [j["id"] for j in (await listing(aep, "page=1&limit=2"))["records"]] == newest_first[:2]
    assert [j["id"] for j in (await listing(aep, "page=2&limit=2"))["records"]] == newest_first[2:4]
    assert [j["id"] for j in (await listing(aep, "page=3&limit=2"))["records"]] == newest_first[4:]
    assert (await listing(aep, "page=4&limit=2"))["records"] == []
    # The next link of a page picked by number continues after it.
    body = await listing(aep, "page=2&limit=2")
    rest = await aep.call("GET", UPS + body["link"]["next"], status=200, schema="export-job.list.response")
    assert [j["id"] for j in rest["records"]] == newest_first[4:]


@pytest.mark.parametrize(
    "query", ["start=99999999999999999999", "page=99999999999999999999", "offset=999999999"]
)
async def test_far_pages_are_empty(aep: Aep, query: str) -> None:
    await make_jobs(aep, 2)
    body = await listing(aep, query)
    assert body["records"] == []
    assert body["link"]["next"] == ""


@pytest.mark.parametrize("query", ["start=-1", "start=x", "page=0", "page=-2", "page=two"])
async def test_bad_start_or_page_is_400(aep: Aep, query: str) -> None:
    error = await aep.call("GET", f"{JOBS}?{query}", status=400, schema="error.ups")
    assert query.split("=")[0] in error["errors"]["400"][0]["message"]


@pytest.mark.parametrize(
    ("sort", "ascending"),
    [
        ("creationTime", False),
        ("creationTime:desc", False),
        ("creationTime:asc", True),
        ("createdTime:asc", True),
        ("createdTime:desc", False),
    ],
)
async def test_sort_by_creation_time(aep: Aep, sort: str, ascending: bool) -> None:
    ids = await make_jobs(aep, 5)
    expected = ids if ascending else ids[::-1]
    body = await listing(aep, f"sort={sort}")
    assert [j["id"] for j in body["records"]] == expected
    assert body["page"]["sortField"] == "createdTime"
    assert body["page"]["sort"] == ("asc" if ascending else "desc")
    pages = await walk(aep, f"sort={sort}&limit=2")
    assert [job_id for page in pages for job_id in page] == expected


async def test_ascending_walk_carries_the_sort(aep: Aep) -> None:
    await make_jobs(aep, 3)
    body = await listing(aep, "sort=creationTime:asc&limit=1")
    assert body["link"]["next"].endswith("&sort=creationTime:asc")


async def test_sort_by_update_time(aep: Aep) -> None:
    # Slow jobs stay NEW for a minute; forcing a status at a chosen instant sets their updateTime.
    first, second, third, fourth = await make_jobs(aep, 4, scenario="slow")  # created at 0, 1, 2, 3 s
    await aep.advance(7)
    await force(aep, second, "PROCESSING")  # updated at 10 s
    await aep.advance(5)
    await force(aep, fourth, "PROCESSING")  # updated at 15 s
    await aep.advance(5)
    await force(aep, first, "PROCESSING")  # updated at 20 s; third stays at its creation, 2 s
    by_update = [third, second, fourth, first]

    body = await listing(aep, "sort=updateTime:asc")
    assert [j["id"] for j in body["records"]] == by_update
    assert [j["updateTime"] for j in body["records"]] == [START_MS + s * 1000 for s in (2, 10, 15, 20)]
    assert body["page"]["sortField"] == "updateTime"
    assert body["page"]["sort"] == "asc"
    assert [j["id"] for j in (await listing(aep, "sort=updateTime:desc"))["records"]] == by_update[::-1]
    assert [j["id"] for j in (await listing(aep, "sort=updateTime"))["records"]] == by_update[::-1]

    pages = await walk(aep, "sort=updateTime:asc&limit=1")
    assert [job_id for page in pages for job_id in page] == by_update
    pages = await walk(aep, "sort=updateTime:desc&limit=3")
    assert [job_id for page in pages for job_id in page] == by_update[::-1]


@pytest.mark.parametrize(
    "sort", ["name", "name:asc", "creationTime:sideways", "updateTime:up", ":asc", "id:desc"]
)
async def test_bad_sort_is_400(aep: Aep, sort: str) -> None:
    error = await aep.call("GET", f"{JOBS}?sort={sort}", status=400, schema="error.ups")
    assert "sort" in error["errors"]["400"][0]["message"]


async def test_status_filter(aep: Aep) -> None:
    new, processing, succeeded, failed, cancelled = await make_jobs(aep, 5, scenario="slow")
    await force(aep, processing, "PROCESSING")
    await force(aep, succeeded, "SUCCEEDED")
    await force(aep, failed, "FAILED")
    await aep.call("DELETE", f"{JOBS}/{cancelled}", status=200, schema="export-job.cancel.response")
    expected = {
        "NEW": new,
        "PROCESSING": processing,
        "SUCCEEDED": succeeded,
        "FAILED": failed,
        "CANCELLED": cancelled,
    }
    for status, job_id in expected.items():
        body = await listing(aep, f"status={status}")
        assert [(j["id"], j["status"]) for j in body["records"]] == [(job_id, status)], status
    assert [j["id"] for j in (await listing(aep, "status=succeeded"))["records"]] == [succeeded]


async def test_status_filter_follows_the_clock(aep: Aep) -> None:
    ids = await make_jobs(aep, 3, seconds_apart=0)
    assert len((await listing(aep, "status=NEW"))["records"]) == 3
    # The default scenario reaches SUCCEEDED 10 s after creation on the clock alone.
    await aep.advance(10)
    assert (await listing(aep, "status=NEW"))["records"] == []
    assert [j["id"] for j in (await listing(aep, "status=SUCCEEDED"))["records"]] == ids[::-1]


async def test_status_filter_pages_carry_the_status(aep: Aep) -> None:
    ids = await make_jobs(aep, 6, scenario="slow")
    for job_id in ids[1::2]:
        await force(aep, job_id, "FAILED")
    body = await listing(aep, "status=NEW&limit=1")
    assert body["link"]["next"].endswith("&status=NEW")
    pages = await walk(aep, "status=NEW&limit=1")
    assert [job_id for page in pages for job_id in page] == ids[::2][::-1]


@pytest.mark.parametrize("status", ["BOGUS", "DONE", "QUEUED", ""])
async def test_bad_status_is_400(aep: Aep, status: str) -> None:
    error = await aep.call("GET", f"{JOBS}?status={status}", status=400, schema="error.ups")
    assert "status" in error["errors"]["400"][0]["message"]


@pytest.mark.parametrize("query", ["", "limit=2", "limit=2&offset=1", "sort=creationTime:asc", "status=NEW"])
async def test_trailing_slash_lists_the_same(aep: Aep, query: str) -> None:
    await make_jobs(aep, 3)
    assert await listing(aep, query, f"{JOBS}/") == await listing(aep, query, JOBS)


# -- at scale: the index (store.JobIndex) ---------------------------------------------------------------

QUERIES = [
    "",
    "sort=creationTime:asc",
    "sort=updateTime:desc",
    "sort=updateTime:asc",
    *(f"status={status}" for status in ("NEW", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELLED")),
    "status=NEW&sort=updateTime:asc",
    "status=FAILED&sort=creationTime:asc",
]


async def test_a_first_page_touches_no_more_jobs_with_many_than_with_few(
    aep: Aep, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The work of a first page, under every sort and filter, does not grow with the tenant's jobs (it used
    to refresh every job for a status filter or sort=updateTime: 0.55-0.8 s at 100,000 jobs)."""
    from emulator import lifecycle

    calls = 0
    advance = lifecycle.advance

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return advance(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "advance", counting)
    ids = await make_jobs(aep, 300, seconds_apart=0, scenario="slow")
    await aep.advance(30)  # no step is due yet: slow jobs stay NEW for a minute
    for query in QUERIES:
        calls = 0
        body = await listing(aep, f"{query}&limit=5" if query else "limit=5")
        assert calls == 0, (query, calls)
        assert len(body["records"]) == (5 if "status" not in query or "NEW" in query else 0)
    await aep.advance(30)  # every job's step is due: the first listing settles them, once
    calls = 0
    assert [j["id"] for j in (await listing(aep, "status=PROCESSING&limit=3"))["records"]] == ids[::-1][:3]
    assert calls == len(ids)
    calls = 0
    assert (await listing(aep, "status=NEW"))["records"] == []
    assert calls == 0


async def truth(aep: Aep) -> list[dict[str, Any]]:
    """Every job of the tenant as the control plane computes it (no poll, no index)."""
    response = await aep.client.get(f"/_emulator/jobs?org={aep.org}&sandbox={aep.sandbox}")
    return [entry["job"] for entry in (await response.json())["jobs"]]


def expected_page(jobs: list[dict[str, Any]], query: str, limit: int) -> list[int]:
    params = dict(part.split("=") for part in query.split("&") if part)
    status = params.get("status")
    field, _, direction = params.get("sort", "creationTime:desc").partition(":")
    key = "updateTime" if field == "updateTime" else "creationTime"
    chosen = [job for job in jobs if status is None or job["status"] == status]
    chosen.sort(key=lambda job: (job[key], job["id"]), reverse=direction != "asc")
    return [job["id"] for job in chosen[:limit]]


async def test_the_index_agrees_with_the_jobs_through_polls_time_forces_and_deletes(aep: Aep) -> None:
    """Random polls, clock advances, forces, cancels and deletes over jobs of every scenario: every first
    page, under every sort and filter, is the one computed from the jobs themselves."""
    import random

    rng = random.Random(12)
    dataset_id = await aep.create_dataset()
    ids: list[int] = []
    for step in range(120):
        action = rng.choice(["create", "create", "poll", "poll", "advance", "force", "delete"])
        if action == "create" or not ids:
            scenario = rng.choice(["success", "slow", "stuck", "failure", "partial-errors"])
            job = await aep.create_job(dataset_id, headers={"x-emulator-scenario": scenario})
            ids.append(job["id"])
        elif action == "poll":
            await aep.client.get(f"{JOBS}/{rng.choice(ids)}", headers=aep.headers())
        elif action == "advance":
            await aep.advance(rng.choice([0.5, 3, 5, 30, 61, 600]))
        elif action == "force":
            status = rng.choice(["PROCESSING", "SUCCEEDED", "FAILED"])
            await aep.client.post(f"/_emulator/jobs/{rng.choice(ids)}/force", json={"status": status})
        else:
            job_id = rng.choice(ids)
            response = await aep.client.delete(f"{JOBS}/{job_id}", headers=aep.headers())
            if (await response.json()).get("message") == "Export job has been deleted":
                ids.remove(job_id)
        if step % 6 == 5:
            # Listed first: the control plane's read refreshes every job, which would hide a stale index.
            pages = {}
            for query in QUERIES:
                body = await listing(aep, f"{query}&limit=7" if query else "limit=7")
                pages[query] = [j["id"] for j in body["records"]]
            jobs = await truth(aep)
            for query in QUERIES:
                assert pages[query] == expected_page(jobs, query, 7), (step, query)
