"""pytest plugin (registered through the pytest11 entry point, so installing the package is enough).

Fixtures:
- `aep_emulator`: a real emulator on 127.0.0.1 (port 0), fresh for every test. The server starts once per
  session (once per xdist worker) on its own event loop in a background thread; each test gets it back in
  its startup state through `POST /_emulator/reset`. Its clock is manual (frozen until advanced).
- `aep_emulator_app`: a fresh aiohttp `Application`, for pytest-aiohttp's `aiohttp_client`.
- `aep_emulator_options`: the `Options` both are built from (session scope; override it in a conftest).

Marker `@pytest.mark.aep_scenario("name")` sets the default scenario for one test. Option
`--aep-emulator-url URL` runs the same tests against an emulator that is already running.

Everything the fixture object does goes through HTTP (IMS and the `/_emulator` control plane), so it
behaves the same against its own server and against `--aep-emulator-url`. This module imports only the
standard library and pytest at load time: it is loaded by every pytest run in an environment where the
package is installed.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import pytest

from emulator import __version__

if TYPE_CHECKING:
    from aiohttp import web

    from emulator.backend import Backend
    from emulator.options import Options

DEFAULT_ORG = "EMULATOR@AdobeOrg"
DEFAULT_SANDBOX = "prod"
DEFAULT_CLIENT_ID = "aep-emulator-client"
DEFAULT_CLIENT_SECRET = "aep-emulator-secret"
DEFAULT_SCOPES = "openid,AdobeID,read_organizations"
TOKEN_PATH = "/ims/token/v3"
CONTROL = "/_emulator"
MARKER = "aep_scenario"
# The fixture's own token requests carry this User-Agent, so `requests` can leave them out.
FIXTURE_AGENT = f"aep-emulator-pytest-plugin/{__version__}"
CONTROL_TIMEOUT_SECONDS = 30.0
START_TIMEOUT_SECONDS = 30.0
# Re-mint a cached token a little before the emulator clock would expire it (IMS lifetime 86399 s).
TOKEN_REUSE_SECONDS = 86399 - 60


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aep-emulator", "AEP emulator")
    group.addoption(
        "--aep-emulator-url",
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(name): the emulator's default scenario for this test (aep_emulator fixtures)"
    )


class AepEmulatorError(RuntimeError):
    """A control-plane or IMS call of the fixture was refused; the message carries the emulator's answer."""


class _Http:
    """A small keep-alive HTTP client (standard library only: the plugin must not need `requests`)."""

    def __init__(self, base_url: str):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise pytest.UsageError(f"not an http(s) URL: '{base_url}'")
        self._secure = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        with self._lock:
            try:
                return self._send(method, path, body, headers or {})
            except (ConnectionError, http.client.HTTPException):
                # An idle keep-alive connection the server has closed: reconnect once.
                self.close()
                return self._send(method, path, body, headers or {})

    def _send(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._secure else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=CONTROL_TIMEOUT_SECONDS)
        self._connection.request(method, self._prefix + path, body=body, headers=dict(headers))
        response = self._connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class EmulatorClock:
    """The emulator clock, seen from a test: `advance(seconds)` and `now()` (epoch milliseconds)."""

    def __init__(self, emulator: AepEmulator):
        self._emulator = emulator

    def advance(self, seconds: float) -> int:
        """Move the emulator clock forward; returns the new now (epoch ms). Tests advance, never sleep."""
        body = self._emulator.control("POST", "/clock/advance", {"seconds": seconds})
        self._emulator._advanced_seconds += seconds
        return int(body["now"])

    def now(self) -> int:
        return int(self._emulator.control("GET", "/clock")["now"])

    @property
    def mode(self) -> str:
        """`manual` (frozen until advanced, the fixture's default) or `real`."""
        return str(self._emulator.control("GET", "/clock")["mode"])


@dataclass
class _CachedToken:
    value: str
    minted_at_advance: float


class AepEmulator:
    """What a test gets from the `aep_emulator` fixture.

    `url` is the platform base URL (`https://platform.adobe.io` in production) and `ims_url` the IMS base
    URL (`https://ims-na1.adobelogin.com`); tokens are at `token_url`. `org`, `sandbox`, `client_id` and
    `client_secret` are the defaults `headers()` uses.
    """

    def __init__(self, url: str, ims_url: str | None = None, *, has_control_plane: bool = True):
        self.url = url.rstrip("/")
        self.ims_url = (ims_url or url).rstrip("/")
        self.use_default_identity()
        self.has_control_plane = has_control_plane
        self.clock = EmulatorClock(self)
        self._http = _Http(self.url)
        self._ims = self._http if self.ims_url == self.url else _Http(self.ims_url)
        self._tokens: dict[tuple[str, str], _CachedToken] = {}
        # Seconds this fixture has advanced the clock since the last reset: when cached tokens expire.
        self._advanced_seconds = 0.0

    def use_default_identity(self) -> None:
        """The org, sandbox and API client `headers()` uses unless told otherwise."""
        self.org = DEFAULT_ORG
        self.sandbox = DEFAULT_SANDBOX
        self.client_id = DEFAULT_CLIENT_ID
        self.client_secret = DEFAULT_CLIENT_SECRET

    def __repr__(self) -> str:
        return f"AepEmulator(url={self.url!r}, ims_url={self.ims_url!r})"

    @property
    def token_url(self) -> str:
        return self.ims_url + TOKEN_PATH

    # -- AEP side -------------------------------------------------------------------------------

    def token(self, client_id: str | None = None, client_secret: str | None = None) -> str:
        """An access token from the emulated IMS (cached until reset), valid in `--auth strict` too."""
        key = (client_id or self.client_id, client_secret or self.client_secret)
        cached = self._tokens.get(key)
        if cached is not None and self._advanced_seconds - cached.minted_at_advance < TOKEN_REUSE_SECONDS:
            return cached.value
        form = {"grant_type": "client_credentials", "client_id": key[0], "client_secret": key[1]}
        status, raw = self._ims.request(
            "POST",
            TOKEN_PATH,
            urlencode({**form, "scope": DEFAULT_SCOPES}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": FIXTURE_AGENT},
        )
        body = _json(raw)
        if status != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise AepEmulatorError(f"POST {self.token_url} answered {status}: {raw[:500]!r}")
        self._tokens[key] = _CachedToken(str(body["access_token"]), self._advanced_seconds)
        return str(body["access_token"])

    def headers(
        self,
        org: str | None = None,
        sandbox: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> dict[str, str]:
        """Every header AEP requires, with a token minted by the emulated IMS."""
        client = client_id or self.client_id
        return {
            "Authorization": f"Bearer {self.token(client, client_secret)}",
            "x-api-key": client,
            "x-gw-ims-org-id": org or self.org,
            "x-sandbox-name": sandbox or self.sandbox,
            "Content-Type": "application/json",
        }

    # -- control plane --------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the startup state: objects, journal, tokens, scenarios and the clock."""
        self.control("POST", "/reset")
        self._tokens.clear()
        self._advanced_seconds = 0.0

    def use_scenario(self, name: str) -> None:
        """The scenario every new job follows (unless queued, requested by header, or matched)."""
        self.control("PUT", "/scenarios/default", {"name": name})

    def next_job_scenario(self, name: str, count: int = 1) -> None:
        """The scenario for the next `count` jobs created (in any tenant), before any other rule."""
        self.control("POST", "/scenarios/next", {"name": name, "count": count})

    def add_scenario(self, scenario: str | Path | Mapping[str, Any]) -> dict[str, Any]:
        """Upload a scenario (YAML text, a YAML/JSON file, or a dict); returns its summary."""
        if isinstance(scenario, Path):
            text = scenario.read_text(encoding="utf-8")
        elif isinstance(scenario, str):
            text = scenario
        else:
            text = json.dumps(scenario)
        summary: dict[str, Any] = self.control("POST", "/scenarios", text.encode(), raw=True)
        return summary

    def jobs(self, org: str | None = None, sandbox: str | None = None) -> list[dict[str, Any]]:
        """Every job (of one tenant when `org` is given) with its tenant, scenario and current state."""
        query = {"org": org, "sandbox": sandbox or DEFAULT_SANDBOX} if org else {"all": "true"}
        jobs: list[dict[str, Any]] = self.control("GET", f"/jobs?{urlencode(query)}")["jobs"]
        return jobs

    def force_job(self, job_id: int | str, status: str, errors: list[dict[str, str]] | None = None) -> Any:
        """Put a live job in `status` now, whatever its scenario says."""
        body: dict[str, Any] = {"status": status}
        if errors is not None:
            body["errors"] = errors
        return self.control("POST", f"/jobs/{job_id}/force", body)

    def journal(self, **filters: str) -> list[dict[str, Any]]:
        """Requests your code sent to the AEP surface, oldest first; filters: method, path (prefix),
        org, sandbox. The fixture's own token requests are left out."""
        suffix = f"?{urlencode(filters)}" if filters else ""
        entries: list[dict[str, Any]] = self.control("GET", f"/requests{suffix}")["requests"]
        return [e for e in entries if not _from_fixture(e)]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The request journal: method, path, query, headers, body, status, tenant, time."""
        return self.journal()

    def control(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        """Call `/_emulator{path}`; JSON in and out."""
        if not self.has_control_plane:
            pytest.skip(f"{self.url} has no emulator control plane ({CONTROL}); this test needs one")
        payload = None if body is None else (body if raw else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if payload is not None and not raw else {}
        status, answer = self._http.request(method, CONTROL + path, payload, headers)
        parsed = _json(answer)
        if not 200 <= status < 300:
            detail = (
                parsed.get("detail", parsed)
                if isinstance(parsed, dict)
                else answer[:500].decode(errors="replace")
            )
            raise AepEmulatorError(f"{method} {CONTROL}{path} answered {status}: {detail}")
        return parsed

    def close(self) -> None:
        self._http.close()
        self._ims.close()


def _from_fixture(entry: Mapping[str, Any]) -> bool:
    agents = [value for name, value in entry["headers"].items() if name.lower() == "user-agent"]
    return agents == [FIXTURE_AGENT]


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


class EmulatorServer:
    """The emulator on its own event loop in a daemon thread: usable from sync and async clients alike."""

    def __init__(self, options: Options):
        self.options = options
        self.url = ""
        self.backend: Backend | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="aep-emulator", daemon=True)
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            raise AepEmulatorError(f"the emulator did not start within {START_TIMEOUT_SECONDS} s")
        if self._failure is not None:
            raise AepEmulatorError(f"the emulator did not start: {self._failure}") from self._failure

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_SECONDS)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            runner = self._loop.run_until_complete(self._open())
        except BaseException as exc:  # reported to the test thread by start()
            self._failure = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

    async def _open(self) -> web.AppRunner:
        from aiohttp import web

        from emulator.app import create_app
        from emulator.backend import Backend

        self.backend = Backend(self.options)
        app = create_app(self.options, self.backend)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.options.host, self.options.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        host, port = runner.addresses[0][:2]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        return runner


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
    url: str | None = pytestconfig.getoption("aep_emulator_url")
    ims_url: str | None = pytestconfig.getoption("aep_emulator_ims_url")
    if url:
        emulator = AepEmulator(url, ims_url)
        emulator.has_control_plane = _has_control_plane(emulator)
        workers = int(getattr(pytestconfig, "workerinput", {}).get("workercount", 1))
        if emulator.has_control_plane and workers > 1:
            emulator.close()
            # Every test resets the emulator: workers sharing one would wipe each other's state.
            raise pytest.UsageError(
                f"--aep-emulator-url cannot be shared by {workers} pytest-xdist workers; "
                "run without -n, or leave the option out so that each worker starts its own emulator"
            )
        try:
            yield emulator
        finally:
            emulator.close()
        return
    server = EmulatorServer(aep_emulator_options)
    server.start()
    emulator = AepEmulator(server.url, ims_url)
    try:
        yield emulator
    finally:
        emulator.close()
        server.stop()


def _has_control_plane(emulator: AepEmulator) -> bool:
    try:
        status, raw = emulator._http.request("GET", f"{CONTROL}/health")
    except OSError as exc:
        raise AepEmulatorError(f"cannot reach --aep-emulator-url {emulator.url}: {exc}") from exc
    body = _json(raw)
    return status == 200 and isinstance(body, dict) and body.get("status") == "ok"


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
