"""The dashboard over HTTP (no browser): pages, escaping, headers, forms, the live feed, and what it never
touches (the journal, job polls). tests/ui drives the same pages in Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.api import ui
from emulator.app import BACKEND
from tests.conftest import ORG, START_MS, Aep

UI = "/_emulator/ui"
XSS = "<img src=x onerror=alert(1)>"


async def page(client: TestClient[Any, Any], path: str, status: int = 200) -> str:
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, text[:500]
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return text


async def succeeded_job(aep: Aep, **dataset: Any) -> Any:
    job = await aep.create_job(await aep.create_dataset(**dataset))
    await aep.get_job(job["id"])
    await aep.get_job(job["id"])
    return job


async def test_every_page_renders_and_none_is_journaled(client: TestClient[Any, Any], aep: Aep) -> None:
    job = await succeeded_job(aep)
    before = len((await (await client.get("/_emulator/requests")).json())["requests"])
    tenants = await page(client, UI)
    assert f'data-org="{ORG}"' in tenants
    jobs = await page(client, f"{UI}/jobs?org={ORG}&sandbox=prod")
    assert f'data-job-id="{job["id"]}" data-status="SUCCEEDED"' in jobs
    detail = await page(client, f"{UI}/jobs/{job['id']}")
    file_id = re.search(r'data-file-id="([^"]+)"', detail)
    assert file_id is not None
    preview = await page(client, f"{UI}/files/{file_id[1]}?org={ORG}&sandbox=prod&rows=3")
    assert preview.count('<th scope="row">') == 3
    await page(client, f"{UI}/requests?status=2xx&path=/data/core/*")
    await page(client, f"{UI}/scenarios")
    after = (await (await client.get("/_emulator/requests")).json())["requests"]
    assert len(after) == before  # the dashboard is control plane: never journaled
    assert f'id="emulator-clock" data-now="{START_MS}"' in tenants


async def test_reading_a_job_on_the_dashboard_is_not_a_poll(client: TestClient[Any, Any], aep: Aep) -> None:
    job = await aep.create_job(await aep.create_dataset())
    for _ in range(3):
        await page(client, f"{UI}/jobs/{job['id']}")
        await page(client, f"{UI}/jobs?org={ORG}")
    assert (await aep.get_job(job["id"]))["status"] == "PROCESSING"  # the first poll


async def test_values_from_requests_are_escaped(client: TestClient[Any, Any], aep: Aep) -> None:
    job = await aep.create_job(await aep.create_dataset(name=XSS), headers={"x-request-id": "<b>id</b>"})
    for path in (f"{UI}/jobs?org={ORG}", f"{UI}/jobs/{job['id']}", f"{UI}/requests"):
        html = await page(client, path)
        assert XSS not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'data-request-id="&lt;b&gt;id&lt;/b&gt;"' in await page(client, f"{UI}/requests")


async def test_unknown_jobs_and_files_get_the_not_found_page(client: TestClient[Any, Any]) -> None:
    assert "There is no export job" in await page(client, f"{UI}/jobs/abc", 404)
    assert "was not found" in await page(client, f"{UI}/jobs/99", 404)
    await page(client, f"{UI}/files/nope-1?org={ORG}", 404)
    response = await client.get(f"{UI}/jobs")  # no org: a control-plane 400
    assert response.status == 400
    assert (await response.json())["title"] == "BadRequestError"
    assert (await client.get(f"{UI}/static/../app.py")).status == 404
    assert (await client.get(f"{UI}/static/nope.css")).status == 404


async def test_a_file_downloads_as_an_attachment(client: TestClient[Any, Any], aep: Aep) -> None:
    job = await succeeded_job(aep, fileDescription={"format": "json"})
    detail = await page(client, f"{UI}/jobs/{job['id']}")
    link = re.search(r'href="(/_emulator/ui/files/[^"]+/download\?[^"]+)"', detail)
    assert link is not None
    response = await client.get(link[1].replace("&amp;", "&"))
    assert response.status == 200
    assert response.content_type == "application/x-ndjson"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="part-00000-')
    assert (await response.read()).count(b"\n") > 0


async def test_static_assets_are_served_by_the_emulator(client: TestClient[Any, Any]) -> None:
    html = await page(client, UI)
    assets = re.findall(r'(?:href|src)="(/_emulator/ui/static/[^"]+)"', html)
    assert sorted(a.rsplit("/", 1)[1] for a in assets) == ["app.css", "app.js", "favicon.svg"]
    assert not re.search(r'(?:href|src)="(?:https?:)?//', html)  # nothing from elsewhere
    for asset in assets:
        assert (await client.get(asset)).status == 200


async def test_forms_answer_with_a_redirect_or_json(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        f"{UI}/clock/advance",
        data={"amount": "2", "unit": "60", "next": f"{UI}/requests"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == f"{UI}/requests"
    response = await client.post(
        f"{UI}/clock/advance", data={"amount": "30"}, headers={"Accept": "application/json"}
    )
    assert await response.json() == {"message": "Advanced the clock by 30 s to 2023-11-14T22:15:50.000Z."}
    clock = await (await client.get("/_emulator/clock")).json()
    assert clock["now"] == START_MS + 150_000
    response = await client.post(
        f"{UI}/clock/advance",
        data={"amount": "1", "next": "https://elsewhere.example/"},
        allow_redirects=False,
    )
    assert response.headers["Location"] == UI  # never a redirect off the dashboard


async def test_scenario_forms(client: TestClient[Any, Any]) -> None:
    await client.post(f"{UI}/scenarios/default", data={"name": "failure"})
    await client.post(f"{UI}/scenarios/next", data={"name": "stuck", "count": "2"})
    listed = await (await client.get("/_emulator/scenarios")).json()
    assert (listed["default"], listed["queued"]) == ("failure", ["stuck", "stuck"])
    html = await page(client, f"{UI}/scenarios")
    assert 'id="default-scenario">failure<' in html


@pytest.mark.parametrize(
    ("path", "form", "detail"),
    [
        ("/clock/advance", {"amount": "-1"}, "at least 0"),
        ("/clock/advance", {"amount": "nan"}, "finite"),
        ("/clock/advance", {"amount": "1e308", "unit": "1e308"}, "Cannot advance"),
        ("/clock/advance", {}, "must be a number"),
        ("/scenarios/default", {"name": "nope"}, "Unknown scenario"),
        ("/scenarios/next", {"name": "success", "count": "0"}, "count"),
        ("/scenarios/next", {"name": "success", "count": "1.5"}, "count"),
        ("/scenarios/next", {"name": " "}, "required"),
    ],
)
async def test_bad_form_values_are_400s(
    client: TestClient[Any, Any], path: str, form: dict[str, str], detail: str
) -> None:
    response = await client.post(f"{UI}{path}", data=form)
    body = await response.json()
    assert response.status == 400, body
    assert detail in body["detail"]


async def test_forms_from_another_site_are_refused(client: TestClient[Any, Any]) -> None:
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = await client.post(f"{UI}/reset", data={}, headers=headers)
        assert response.status == 403
    clock = await (await client.get("/_emulator/clock")).json()
    assert clock["now"] == START_MS


async def read_event(response: Any) -> str:
    return (await response.content.readuntil(b"\n\n")).decode()


async def test_the_live_feed_tells_what_changed(
    client: TestClient[Any, Any], aep: Aep, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui, "MIN_NOTICE_INTERVAL_S", 0)
    feed = await client.get(f"{UI}/events")
    assert feed.content_type == "text/event-stream"
    assert "retry:" in await read_event(feed)
    assert '"topics":["hello"]' in await read_event(feed)
    await aep.advance(3)
    event = await read_event(feed)
    assert event.startswith("event: change\n")
    assert f'"topics":["clock"],"now":{START_MS + 3000}' in event
    await aep.create_dataset()
    assert '"requests"' in await read_event(feed)
    feed.close()


async def test_the_live_feed_has_a_cap_and_costs_nothing_when_closed(
    client: TestClient[Any, Any], app: Any
) -> None:
    hub = app[BACKEND].events
    hub.max_listeners = 1
    first = await client.get(f"{UI}/events")
    await read_event(first)
    second = await client.get(f"{UI}/events")
    assert second.status == 429
    assert "maximum" in (await second.json())["detail"]
    assert hub.listeners == 1
    hub.close()  # what the app does on shutdown: every feed ends
    await first.content.read()  # the stream ends
    assert first.content.at_eof()
    assert hub.listeners == 0


def test_starting_the_app_loads_neither_jinja2_nor_the_views() -> None:
    """The dashboard's code is loaded with its first page: a server nobody looks at does not pay for it."""
    code = (
        "import sys; from emulator.app import create_app; create_app(); "
        "assert not {'jinja2', 'emulator.ui.views'} & set(sys.modules), 'imported at start'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
