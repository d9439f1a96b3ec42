"""Cases for the dashboard's operations (`/_emulator/ui`, emulator only): every documented status."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from emulator.app import BACKEND
from tests.contract.cases import FORM, Reply, Target, case, emulator
from tests.contract.support import ORG

UI = "/_emulator/ui"
TENANT = {"org": ORG, "sandbox": "prod"}


def _get(operation_id: str, status: int, path: str, name: str, **kwargs: Any) -> None:
    async def run(target: Target) -> Reply:
        return await emulator(target).request("GET", f"{UI}{path}", **kwargs)

    run.__name__ = name
    case(operation_id, status)(run)


def _post(operation_id: str, status: int, path: str, name: str, form: str, **headers: str) -> None:
    async def run(target: Target) -> Reply:
        emu = emulator(target)
        sent = {"Content-Type": FORM, **headers}
        # Not followed: the 303 itself is the answer under test.
        response = await emu.client.post(f"{UI}{path}", data=form, headers=sent, allow_redirects=False)
        return Reply("POST", f"{UI}{path}", response.status, response.headers, await response.read())

    run.__name__ = name
    case(operation_id, status)(run)


async def _file_id(target: Target) -> str:
    emu = emulator(target)
    job = await emu.finished_job()
    page = await emu.request("GET", f"{UI}/jobs/{job['id']}")
    found = re.search(r'data-file-id="([^"]+)"', page.body.decode())
    assert found is not None, str(page)
    return found[1]


_get("uiTenants", 200, "", "tenants")
_get("uiTenantJobs", 200, "/jobs", "tenant_jobs", params=TENANT)
_get("uiTenantJobs", 400, "/jobs", "no_org")
_get("uiJob", 404, "/jobs/424242", "unknown_job")
_get("uiFile", 400, "/files/x-1", "no_org")
_get("uiFile", 404, "/files/x-1", "unknown_file", params=TENANT)
_get("uiFileDownload", 400, "/files/x-1/download", "no_org")
_get("uiFileDownload", 404, "/files/x-1/download", "unknown_file", params=TENANT)
_get("uiRequests", 200, "/requests", "journal", params={"status": "4xx"})
_get("uiRequestsHar", 200, "/requests.har", "har", params={"method": "GET"})
_get("uiScenarios", 200, "/scenarios", "scenarios")
_get("uiStatic", 200, "/static/app.css", "stylesheet")
_get("uiStatic", 404, "/static/nope.css", "unknown_asset")

for operation_id, path, good in (
    ("uiAdvanceClock", "/clock/advance", "amount=5&unit=60"),
    ("uiReset", "/reset", "next=%2F_emulator%2Fui"),
    ("uiSetDefaultScenario", "/scenarios/default", "name=failure"),
    ("uiQueueScenario", "/scenarios/next", "name=stuck&count=2"),
):
    _post(operation_id, 200, path, "json_answer", good, Accept="application/json")
    _post(operation_id, 303, path, "back_to_the_page", good)
    _post(operation_id, 403, path, "from_another_site", good, Origin="http://elsewhere.example")
    _post(operation_id, 400, path, "form_too_long", good + "&next=" + "x" * 5000)


@case("uiJob", 200)
async def job_page(target: Target) -> Reply:
    emu = emulator(target)
    job = await emu.finished_job()
    return await emu.request("GET", f"{UI}/jobs/{job['id']}")


@case("uiFile", 200)
async def file_preview(target: Target) -> Reply:
    return await emulator(target).request("GET", f"{UI}/files/{await _file_id(target)}", params=TENANT)


@case("uiFileDownload", 200)
async def file_download(target: Target) -> Reply:
    file_id = await _file_id(target)
    return await emulator(target).request("GET", f"{UI}/files/{file_id}/download", params=TENANT)


@case("uiEvents", 200)
async def live_feed(target: Target) -> Reply:
    """The stream's head and first event; then the hub closes (as at shutdown) and the stream ends."""
    emu = emulator(target)
    response = await emu.client.get(f"{UI}/events")
    first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
    emu.client.server.app[BACKEND].events.close()
    rest = await asyncio.wait_for(response.content.read(), 10)
    return Reply("GET", f"{UI}/events", response.status, response.headers, first + rest)


@case("uiEvents", 429)
async def live_feed_full(target: Target) -> Reply:
    emu = emulator(target)
    emu.client.server.app[BACKEND].events.max_listeners = 0
    return await emu.request("GET", f"{UI}/events")
