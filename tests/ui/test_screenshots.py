"""Screenshots of the main views at 1280x800, light and dark: saved for people to look at (the README shows
one), and checked for what a person would notice first: the page is not blank and its colours follow the
scheme."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import ORG, Aep, playwright_expect, screenshots_dir

expect = playwright_expect()

UI = "/_emulator/ui"


def traffic(aep: Aep) -> int:
    """A few jobs in several states, a failed request, a JSON Lines dataset: something to look at."""
    dataset = aep.dataset("Profile export")
    done = aep.job(dataset)
    aep.poll(done)
    aep.poll(done)
    running = aep.job(dataset)
    aep.poll(running)
    aep.job(dataset, **{"x-emulator-scenario": "failure"})
    aep.job(dataset, **{"x-emulator-scenario": "stuck"})
    aep.poll("999")
    other = Aep(aep.url, org="ANOTHER@AdobeOrg", sandbox="dev")
    other.job(other.dataset("Audience export", fmt="json"))
    return done


@pytest.mark.parametrize("scheme", ["light", "dark"], indirect=True)
def test_screenshots_of_the_main_views(page: Any, aep: Aep, scheme: str) -> None:
    done = traffic(aep)
    folder = screenshots_dir()
    views = {
        "tenants": UI,
        "jobs": f"{UI}/jobs?org={ORG}&sandbox=prod",
        "job": f"{UI}/jobs/{done}",
        "requests": f"{UI}/requests",
        "scenarios": f"{UI}/scenarios",
    }
    for name, where in views.items():
        page.goto(where)
        expect(page.locator("body")).to_have_attribute("data-live", "on")
        page.screenshot(path=str(folder / f"{name}-{scheme}.png"))
    page.goto(f"{UI}/jobs/{done}")
    page.locator("a.preview-link").first.click()
    expect(page.locator("#preview tbody tr").first).to_be_visible()
    page.screenshot(path=str(folder / f"file-{scheme}.png"))

    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(255, 255, 255)" if scheme == "light" else "rgb(15, 19, 24)")
