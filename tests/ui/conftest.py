"""Browser tests of the dashboard: Debian's Chromium (headless), driven by Playwright's Python package.

Playwright is pointed at the system Chromium (`/usr/bin/chromium`, or AEP_EMULATOR_CHROMIUM); it never
downloads a browser of its own. Outside CI the tests skip, saying why, when Chromium or Playwright is
missing; in CI (CI=true) they fail instead: `.ci/run` installs Chromium with apt-get first.

Screenshots of the main views go to build/screenshots/ (or AEP_EMULATOR_SCREENSHOTS=DIR).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from emulator.options import Options
from emulator.runner import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
ORG = "UITEST@AdobeOrg"
START_MS = 1_700_000_000_000
PROFILE_UNION = "https://ns.adobe.com/xdm/context/profile__union"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
WAIT_MS = 15_000  # how long a live update may take to show before a test fails (it normally takes ~0.3 s)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: .ci/run installs it; the browser tests must run)")
    pytest.skip(reason)


def playwright_expect() -> Any:
    """Playwright's `expect`, for a test module to import at its top: outside CI a missing package skips
    the module, saying why; in CI it is an error."""
    try:
        from playwright.sync_api import expect
    except ImportError:
        if _in_ci():
            raise
        pytest.skip(
            "Playwright's Python package is missing (pip install -e '.[test]')", allow_module_level=True
        )
    return expect


def chromium_path() -> str | None:
    configured = os.environ.get("AEP_EMULATOR_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an event loop running
    in this thread while it is started, and the async tests of other modules need the thread's loop."""
    executable = chromium_path()
    if executable is None:
        _unavailable("Chromium is not installed (Debian: apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright's Python package is missing (pip install -e '.[test]')")
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(Options(port=0, clock="manual", start_time_ms=START_MS)) as server:
        yield server


@pytest.fixture
def dialogs() -> list[str]:
    """Every JavaScript dialog the page opened but the Reset confirmation (an alert() fired by injected
    markup would land here)."""
    return []


@pytest.fixture(params=["light"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def page(browser: Any, emulator: EmulatorServer, scheme: str, dialogs: list[str]) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, color_scheme=scheme, base_url=emulator.url)
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()

    def on_dialog(dialog: Any) -> None:
        if dialog.type == "confirm":
            dialog.accept()
        else:
            dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

    tab.on("dialog", on_dialog)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"the page raised script errors: {errors}"


def screenshots_dir() -> Path:
    folder = Path(os.environ.get("AEP_EMULATOR_SCREENSHOTS") or ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Aep:
    """The AEP surface as a client calls it (requests), for the browser tests' own traffic."""

    def __init__(self, url: str, org: str = ORG, sandbox: str = "prod"):
        self.url = url
        self.headers = {
            "Authorization": "Bearer ui-test",
            "x-api-key": "ui-test",
            "x-gw-ims-org-id": org,
            "x-sandbox-name": sandbox,
            "Content-Type": "application/json",
        }

    def dataset(self, name: str = "Profile export", fmt: str = "parquet") -> str:
        body = {
            "name": name,
            "schemaRef": {"id": PROFILE_UNION, "contentType": "application/vnd.adobe.xed+json;version=1"},
            "fileDescription": {"persisted": True, "containerFormat": "parquet", "format": fmt},
        }
        answer = requests.post(
            f"{self.url}/data/foundation/catalog/dataSets", json=body, headers=self.headers
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()[0].rsplit("/", 1)[1])

    def job(self, dataset_id: str, **headers: str) -> int:
        body = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
        answer = requests.post(
            f"{self.url}/data/core/ups/export/jobs", json=body, headers={**self.headers, **headers}
        )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["id"])

    def poll(self, job_id: int | str, **headers: str) -> requests.Response:
        return requests.get(
            f"{self.url}/data/core/ups/export/jobs/{job_id}", headers={**self.headers, **headers}
        )


@pytest.fixture
def aep(emulator: EmulatorServer) -> Aep:
    return Aep(emulator.url)
