"""The dashboard in a real browser (headless Chromium): live updates, the clock, file previews, the journal,
scenarios, keyboard use, and values from requests shown as text."""

from __future__ import annotations

import json
from typing import Any

import requests

from emulator.runner import EmulatorServer
from tests.ui.conftest import ORG, START_MS, Aep, playwright_expect

expect = playwright_expect()

UI = "/_emulator/ui"
JOBS_PAGE = f"{UI}/jobs?org={ORG}&sandbox=prod"
XSS_NAME = "<img src=x onerror=alert(1)>"


def mark_page(page: Any) -> None:
    """A flag that a reload would wipe: live updates must keep it."""
    page.evaluate("window.__notReloaded = true")


def still_same_page(page: Any) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def job_row(page: Any, job_id: int) -> Any:
    return page.locator(f'#jobs tr[data-job-id="{job_id}"]')


def test_jobs_appear_and_move_live_when_the_clock_is_advanced_from_the_page(page: Any, aep: Aep) -> None:
    dataset = aep.dataset()
    page.goto(JOBS_PAGE)
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    mark_page(page)
    clock = page.locator("#emulator-clock")
    assert clock.get_attribute("data-now") == str(START_MS)

    first, second = aep.job(dataset), aep.job(dataset)  # created through the AEP API, not the page
    expect(job_row(page, first)).to_have_attribute("data-status", "NEW")
    expect(job_row(page, second)).to_have_attribute("data-status", "NEW")

    page.fill("#advance-amount", "5")  # the bundled `success`: PROCESSING after 5 s, SUCCEEDED 5 s later
    page.click("#advance-button")
    expect(clock).to_have_attribute("data-now", str(START_MS + 5_000))
    expect(job_row(page, first)).to_have_attribute("data-status", "PROCESSING")

    page.click("#advance-button")
    expect(clock).to_have_attribute("data-now", str(START_MS + 10_000))
    expect(job_row(page, first)).to_have_attribute("data-status", "SUCCEEDED")
    expect(job_row(page, second)).to_have_attribute("data-status", "SUCCEEDED")
    expect(page.locator("#status")).to_contain_text("Advanced the clock by 5 s")
    assert still_same_page(page)

    aep.poll(first)  # a poll through the API shows in the polls column, live
    expect(job_row(page, first).locator("td").nth(6)).to_have_text("1")
    assert still_same_page(page)


def test_a_job_page_draws_its_timeline_and_a_file_preview_opens(page: Any, aep: Aep) -> None:
    job = aep.job(aep.dataset())
    page.goto(f"{UI}/jobs/{job}")
    mark_page(page)
    status = page.locator("#job-status")
    expect(status).to_have_attribute("data-status", "NEW")
    aep.poll(job)  # PROCESSING on the first poll
    expect(status).to_have_attribute("data-status", "PROCESSING")
    expect(page.locator("#timeline .poll")).to_have_count(1)
    aep.poll(job)
    expect(status).to_have_attribute("data-status", "SUCCEEDED")
    expect(page.locator("#timeline .transition")).to_have_count(3)
    expect(page.locator("#transitions tbody tr")).to_have_count(3)
    assert still_same_page(page)

    link = page.locator("a.preview-link").first
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("#preview tbody tr")).to_have_count(20)
    headers = page.locator("#preview thead th").all_inner_texts()
    assert "identityMap" in headers and "person.name.firstName" in headers
    download = page.locator("#file-download")
    answer = page.request.get(download.get_attribute("href"))
    assert answer.status == 200
    assert answer.body()[:4] == b"PAR1"


def test_a_json_lines_file_previews_too(page: Any, aep: Aep) -> None:
    job = aep.job(aep.dataset(fmt="json"))
    aep.poll(job)
    aep.poll(job)
    page.goto(f"{UI}/jobs/{job}")
    page.locator("a.preview-link").first.click()
    expect(page.locator("#preview tbody tr")).to_have_count(20)
    assert "JSON Lines" in page.locator("main").inner_text()


def test_values_from_requests_are_shown_as_text(page: Any, aep: Aep, dialogs: list[str]) -> None:
    dataset = aep.dataset(name=XSS_NAME)
    job = aep.job(dataset, **{"x-request-id": '"><img/src=x/onerror=alert(2)>'})
    Aep(aep.url, sandbox="<script>alert(3)</script>").dataset(name="<b>bold</b>")

    page.goto(JOBS_PAGE)
    name = page.locator(f'#datasets tr[data-dataset-id="{dataset}"] .dataset-name')
    expect(name).to_have_text(XSS_NAME)
    assert page.locator("main img").count() == 0

    page.goto(f"{UI}/jobs/{job}")
    expect(page.locator("dd .dataset-name")).to_have_text(XSS_NAME)
    page.goto(f"{UI}/requests")
    rows = page.locator("#journal tr.journal-row")
    expect(rows).to_have_count(3)
    assert rows.nth(1).get_attribute("data-request-id") == '"><img/src=x/onerror=alert(2)>'
    page.goto(UI)
    expect(page.locator('#tenants tr[data-sandbox="<script>alert(3)</script>"]')).to_have_count(1)
    for where in (JOBS_PAGE, f"{UI}/jobs/{job}", f"{UI}/requests", UI):
        page.goto(where)
        assert page.locator("main img, main script").count() == 0, where
    assert dialogs == []


def test_the_journal_filters_shows_bodies_and_downloads_har(page: Any, aep: Aep) -> None:
    job = aep.job(aep.dataset())
    aep.poll(job, **{"x-request-id": "poll-1"})
    aep.poll("404404", **{"x-request-id": "missing-1"})
    page.goto(f"{UI}/requests")
    mark_page(page)
    rows = page.locator("#journal tr.journal-row")
    expect(rows).to_have_count(4)
    assert rows.first.get_attribute("data-request-id") == "missing-1"  # newest first
    assert rows.nth(1).get_attribute("data-request-id") == "poll-1"

    aep.poll(job, **{"x-request-id": "poll-2"})  # arrives live
    expect(rows.first).to_have_attribute("data-request-id", "poll-2")
    assert still_same_page(page)

    page.fill("#filter-status", "4xx")
    page.press("#filter-status", "Enter")
    expect(rows).to_have_count(1)
    missing = page.locator('tr[data-request-id="missing-1"]')
    missing.locator("summary").click()
    expect(missing.locator("pre.body").nth(1)).to_contain_text("not found")
    expect(missing.locator("pre.headers")).to_contain_text("x-request-id: missing-1")

    har = page.request.get(page.locator("#har-download").get_attribute("href"))
    assert har.status == 200
    entries = json.loads(har.body())["log"]["entries"]
    assert [e["_requestId"] for e in entries] == ["missing-1"]
    assert entries[0]["response"]["status"] == 404


def test_scenarios_set_default_and_queue_next_from_the_page(page: Any, emulator: EmulatorServer) -> None:
    page.goto(f"{UI}/scenarios")
    failure = page.locator('#scenarios tr[data-scenario="failure"]')
    failure.locator("summary").click()
    expect(failure.locator("pre.yaml")).to_contain_text("FAILED")
    failure.get_by_role("button", name="Make failure the default").click()
    expect(page.locator("#default-scenario")).to_have_text("failure")
    stuck = page.locator('#scenarios tr[data-scenario="stuck"]')
    stuck.locator('input[name="count"]').fill("2")
    stuck.get_by_role("button", name="Queue stuck for the next jobs").click()
    expect(page.locator("#queue")).to_contain_text("stuck stuck")
    listed = requests.get(f"{emulator.url}/_emulator/scenarios").json()
    assert listed["default"] == "failure"
    assert listed["queued"] == ["stuck", "stuck"]


def test_the_dashboard_works_by_keyboard(page: Any, aep: Aep) -> None:
    job = aep.job(aep.dataset())
    page.goto(JOBS_PAGE)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.focus("#advance-amount")
    page.keyboard.press("Control+A")
    page.keyboard.type("1")
    page.keyboard.press("Tab")  # the unit
    page.keyboard.press("ArrowDown")  # minutes
    page.keyboard.press("Tab")  # the button
    page.keyboard.press("Enter")
    expect(page.locator("#emulator-clock")).to_have_attribute("data-now", str(START_MS + 60_000))
    expect(job_row(page, job)).to_have_attribute("data-status", "SUCCEEDED")
    page.focus(f'#jobs tr[data-job-id="{job}"] a')
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{aep.url}{UI}/jobs/{job}")


def test_reset_from_the_page_clears_the_tenants(page: Any, aep: Aep) -> None:
    aep.job(aep.dataset())
    page.goto(UI)
    expect(page.locator("#tenants tbody tr")).to_have_count(1)
    page.click("#advance-button")
    expect(page.locator("#emulator-clock")).to_have_attribute("data-now", str(START_MS + 5_000))
    page.click("#reset-button")  # confirmed by the page fixture
    expect(page.locator("#tenants")).to_have_count(0)
    expect(page.locator("#emulator-clock")).to_have_attribute("data-now", str(START_MS))


def test_the_page_has_no_horizontal_scroll_at_1280x800(page: Any, aep: Aep) -> None:
    job = aep.job(aep.dataset())
    for where in (UI, JOBS_PAGE, f"{UI}/jobs/{job}", f"{UI}/requests", f"{UI}/scenarios"):
        page.goto(where)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, (where, width)
