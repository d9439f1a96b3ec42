"""pytest plugin (registered through the pytest11 entry point, so installing the package is enough).

Fixtures:
- `aep_emulator`: a real emulator on 127.0.0.1 (port 0), fresh for every test. The server starts once per
  session (once per xdist worker) on its own event loop in a background thread; each test gets it back in
  its startup state through `POST /_emulator/reset`. Its clock is manual (frozen until advanced).
- `aep_emulator_app`: a fresh aiohttp `Application`, for pytest-aiohttp's `aiohttp_client`.
- `aep_emulator_options`: the `Options` both are built from (session scope; override it in a conftest).

Marker `@pytest.mark.aep_scenario("name")` sets the default scenario for one test. Option
`--aep-emulator-url URL` runs the same tests against an emulator that is already running. Option
`--aep-emulator-har DIR`: for each failed test that used an emulator fixture, a HAR 1.2 file of the requests
it sent (`DIR/<test id>.har`), and a report section listing the last of them with their status and hint.

The fixture object is `emulator.testing.AepEmulator`, the test client usable from any runner; this module
holds only the pytest hooks and fixtures. It imports only the standard library and pytest at load time: it
is loaded by every pytest run in an environment where the package is installed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from emulator.testing import AepEmulator, AepEmulatorError, EmulatorUnreachable, InvalidURL, NoControlPlane

if TYPE_CHECKING:
    from aiohttp import web

    from emulator.backend import Backend
    from emulator.options import Options

__all__ = ["AepEmulator", "AepEmulatorError"]  # importable from here too, as they always were

MARKER = "aep_scenario"
URL_OPTION = "--aep-emulator-url"
HAR_OPTION = "--aep-emulator-har"
# The client for --aep-emulator-url, probed once at startup (in the controller and in each xdist worker).
REMOTE = pytest.StashKey[AepEmulator]()
HAR_WRITTEN = pytest.StashKey[bool]()  # on a test item: its HAR file is written (once per test)
REPORT_SECTION = "aep-emulator requests"
MAX_FILE_STEM = 150


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aep-emulator", "AEP emulator")
    group.addoption(
        URL_OPTION,
        default=None,
        metavar="URL",
        help="use the emulator already running at URL instead of starting one "
        "(start it with --clock manual; do not share one server between xdist workers)",
    )
    group.addoption(
        "--aep-emulator-ims-url",
        default=None,
        metavar="URL",
        help="IMS base URL for the fixture's tokens (default: the emulator URL)",
    )
    group.addoption(
        HAR_OPTION,
        default=None,
        metavar="DIR",
        type=Path,
        help="for each failed test that used an emulator fixture, write the requests it sent as a HAR 1.2 "
        "file in DIR and list the last of them in its report",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(name): the emulator's default scenario for this test (aep_emulator fixtures)"
    )
    url: str | None = config.getoption("aep_emulator_url")
    if url:
        config.stash[REMOTE] = _remote(config, url)


def pytest_unconfigure(config: pytest.Config) -> None:
    remote = config.stash.get(REMOTE, None)
    if remote is not None:
        remote.close()


def _remote(config: pytest.Config, url: str) -> AepEmulator:
    """The client for a server the plugin did not start; what cannot work is one usage error, now."""
    try:
        remote = AepEmulator(url, config.getoption("aep_emulator_ims_url"))
        remote.check_control_plane()
    except InvalidURL as exc:
        raise pytest.UsageError(f"{URL_OPTION}: {exc}") from None
    except EmulatorUnreachable as exc:
        raise pytest.UsageError(f"cannot reach {URL_OPTION} {exc.url}: {exc.reason}") from None
    if hasattr(config, "workerinput") or not remote.has_control_plane:
        return remote  # an xdist worker: the controller has checked the rest, once
    workers = int(getattr(config.option, "numprocesses", None) or 0)
    if workers > 1:
        remote.close()
        # Every test resets the emulator: workers sharing one would wipe each other's state.
        raise pytest.UsageError(
            f"{URL_OPTION} cannot be shared by {workers} pytest-xdist workers; run with -n0, or leave "
            "the option out so that each worker starts its own emulator"
        )
    mode = remote.clock.mode
    if mode != "manual":
        config.issue_config_time_warning(
            pytest.PytestWarning(
                f"the emulator at {remote.url} runs a {mode} clock: its jobs also move on their own, so "
                "timing-dependent tests may flake; start it with `aep-emulator serve --clock manual`"
            ),
            stacklevel=2,
        )
    return remote


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _skip_without_control_plane())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _skip_without_control_plane())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    folder: Path | None = item.config.getoption("aep_emulator_har")
    if folder is None or not report.failed or item.stash.get(HAR_WRITTEN, False):
        return report
    try:
        written = _write_har(item, folder)
    except Exception as exc:  # a report about the emulator must never hide the test's own failure
        report.sections.append((REPORT_SECTION, f"could not read the emulator's journal: {exc}"))
        return report
    if written is not None:
        item.stash[HAR_WRITTEN] = True
        path, listing = written
        report.sections.append((REPORT_SECTION, f"{listing}\nHAR file: {path}"))
    return report


def _write_har(item: pytest.Item, folder: Path) -> tuple[Path, str] | None:
    """The HAR file of the test's requests and the listing for its report; None when the test used no
    emulator. Each test starts with an emptied journal (the fixtures reset it), so the journal holds this
    test's requests and no other's."""
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    emulator = funcargs.get("aep_emulator")
    app = funcargs.get("aep_emulator_app")
    if isinstance(emulator, AepEmulator):
        if not emulator.has_control_plane:
            return None
        document = emulator.har()
        listing = emulator.describe_requests()
    elif app is not None:
        document, listing = _in_process_har(app)
    else:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", item.nodeid).strip("_")[:MAX_FILE_STEM] or "test"
    path = folder / f"{stem}.har"
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
    return path, listing


def _in_process_har(app: web.Application) -> tuple[dict[str, Any], str]:
    from emulator import har
    from emulator.api.common import BACKEND
    from emulator.journal import PAGE_MAX
    from emulator.testing.client import describe

    journal = app[BACKEND].journal
    page = journal.page({}, max(0, len(journal.entries({})) - PAGE_MAX), PAGE_MAX)
    # The app served through pytest-aiohttp's test server, whose address the app does not know.
    document = har.document(page.entries, "http://127.0.0.1")
    return document, describe([entry.to_json() for entry in page.entries])


def _skip_without_control_plane() -> Generator[None, None, None]:
    try:
        return (yield)
    except NoControlPlane as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def aep_emulator_options() -> Options:
    """Options for the fixture's server and for `aep_emulator_app`. Override it (session scope) to change
    them, e.g. `Options(port=0, clock="manual", auth="strict", scenario_paths=(Path("scenarios"),))`."""
    from emulator.options import Options

    return Options(host="127.0.0.1", port=0, clock="manual")


@pytest.fixture(scope="session")
def _aep_emulator_session(
    pytestconfig: pytest.Config, aep_emulator_options: Options
) -> Iterator[AepEmulator]:
    remote = pytestconfig.stash.get(REMOTE, None)
    if remote is not None:
        yield remote  # closed by pytest_unconfigure
        return
    from emulator.runner import EmulatorServer

    ims_url = pytestconfig.getoption("aep_emulator_ims_url")
    with EmulatorServer(aep_emulator_options) as server, AepEmulator(server.url, ims_url) as emulator:
        yield emulator


@pytest.fixture
def aep_emulator(request: pytest.FixtureRequest, _aep_emulator_session: AepEmulator) -> AepEmulator:
    """A running emulator in its startup state (manual clock), plus helpers to drive it."""
    emulator = _aep_emulator_session
    emulator.use_default_identity()  # a test may have changed them on this session-wide object
    if emulator.has_control_plane:
        emulator.reset()
        marker = request.node.get_closest_marker(MARKER)
        if marker is not None:
            emulator.use_scenario(_scenario_name(marker))
    return emulator


@pytest.fixture(scope="session")
def _aep_emulator_backend(aep_emulator_options: Options) -> Backend:
    # Building a backend loads and validates every bundled scenario (milliseconds); resetting one is
    # microseconds, and it holds no event-loop state, so the apps of all tests share one.
    from emulator.backend import Backend

    return Backend(aep_emulator_options)


@pytest.fixture
def aep_emulator_app(request: pytest.FixtureRequest, _aep_emulator_backend: Backend) -> web.Application:
    """A fresh emulator app (startup state) for `aiohttp_client(aep_emulator_app)`; honours the
    `aep_scenario` marker."""
    from emulator.app import create_app

    backend = _aep_emulator_backend
    backend.reset()
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        backend.scenarios.set_default(_scenario_name(marker))
    return create_app(backend.options, backend)


def _scenario_name(marker: pytest.Mark) -> str:
    name = marker.args[0] if marker.args else marker.kwargs.get("name")
    if not isinstance(name, str) or not name:
        raise pytest.UsageError(f'@pytest.mark.{MARKER} needs a scenario name, e.g. {MARKER}("failure")')
    return name
