"""`AepEmulator`: drives a running emulator from a test, over HTTP only (IMS and the control plane)."""

from __future__ import annotations

import json
import unittest
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from emulator import __version__
from emulator.options import CONTROL_PREFIX, DEFAULT_SANDBOX, TOKEN_LIFETIME_SECONDS
from emulator.testing.http import HttpClient

DEFAULT_ORG = "EMULATOR@AdobeOrg"
DEFAULT_CLIENT_ID = "aep-emulator-client"
DEFAULT_CLIENT_SECRET = "aep-emulator-secret"
DEFAULT_SCOPES = "openid,AdobeID,read_organizations"
TOKEN_PATH = "/ims/token/v3"
SEGMENT_DEFINITIONS_PATH = "/data/core/ups/segment/definitions"
MERGE_POLICIES_PATH = "/data/core/ups/config/mergePolicies"
# The client's own token requests carry this User-Agent, so that `journal()` can leave them out.
CLIENT_AGENT = f"aep-emulator-test-client/{__version__}"
# Re-mint a cached token a little before the emulator clock would expire it.
TOKEN_REUSE_SECONDS = TOKEN_LIFETIME_SECONDS - 60
# A failure message lists this many of the latest requests.
DESCRIBED_REQUESTS = 20


class AepEmulatorError(RuntimeError):
    """A control-plane or IMS call was refused; the message carries the emulator's answer."""


class EmulatorUnreachable(AepEmulatorError):
    """Nothing answers HTTP at the URL."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


class NoControlPlane(unittest.SkipTest):
    """The server has no emulator control plane (an AEP-compatible URL): a test that needs it is skipped
    (unittest skips on this exception; the pytest plugin turns it into `pytest.skip`)."""


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
        """`manual` (frozen until advanced, the pytest fixture's default) or `real`."""
        return str(self._emulator.control("GET", "/clock")["mode"])


@dataclass
class _CachedToken:
    value: str
    minted_at_advance: float


class AepEmulator:
    """A running emulator, driven from a test (what the `aep_emulator` pytest fixture yields).

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
        self._http = HttpClient(self.url)
        self._ims = self._http if self.ims_url == self.url else HttpClient(self.ims_url)
        self._tokens: dict[tuple[str, str], _CachedToken] = {}
        # Seconds this client has advanced the clock since the last reset: when cached tokens expire.
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

    def check_control_plane(self) -> bool:
        """Ask the server whether it has the emulator's control plane; sets `has_control_plane`.
        Raises `EmulatorUnreachable` when nothing answers."""
        try:
            status, raw = self._http.request("GET", f"{CONTROL_PREFIX}/health")
        except OSError as exc:
            raise EmulatorUnreachable(self.url, str(exc)) from exc
        body = _json(raw)
        self.has_control_plane = status == 200 and isinstance(body, dict) and body.get("status") == "ok"
        return self.has_control_plane

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
            {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": CLIENT_AGENT},
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
        """The scenario every new job of its kind follows (unless queued, requested by header, or
        matched): an export-job scenario for export jobs, a `kind: segment` one for segment jobs."""
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

    def jobs(
        self, org: str | None = None, sandbox: str | None = None, *, kind: str | None = None
    ) -> list[dict[str, Any]]:
        """Every job (of one tenant when `org` is given; of one `kind`, export or segment, when given) with
        its kind, tenant, scenario and current state."""
        query = {"org": org, "sandbox": sandbox or DEFAULT_SANDBOX} if org else {"all": "true"}
        jobs: list[dict[str, Any]] = self.control("GET", f"/jobs?{urlencode(query)}")["jobs"]
        return [job for job in jobs if kind is None or job["kind"] == kind]

    def segments(self, org: str | None = None, sandbox: str | None = None) -> list[dict[str, Any]]:
        """Every segment definition (of one tenant when `org` is given) and how its members are decided:
        `membership` is `pql` (its expression is evaluated) or `hash` (outside the subset; see `reason`)."""
        query = {"org": org, "sandbox": sandbox or DEFAULT_SANDBOX} if org else {"all": "true"}
        found: list[dict[str, Any]] = self.control("GET", f"/segments?{urlencode(query)}")["definitions"]
        return found

    def define_segment(
        self, name: str, pql: str, *, org: str | None = None, sandbox: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Create a segment definition (PQL text) through the AEP surface, as a client would; returns it.
        `fields` add to the body (description, mergePolicyId, evaluationInfo, ...)."""
        body = {
            "name": name,
            "expression": {"type": "PQL", "format": "pql/text", "value": pql},
            "schema": {"name": "_xdm.context.profile"},
            **fields,
        }
        created: dict[str, Any] = self.aep("POST", SEGMENT_DEFINITIONS_PATH, body, org=org, sandbox=sandbox)
        return created

    def default_merge_policy_id(self, org: str | None = None, sandbox: str | None = None) -> str:
        """The id of the tenant's default merge policy (each tenant starts with one)."""
        listed = self.aep("GET", f"{MERGE_POLICIES_PATH}?default=true", org=org, sandbox=sandbox)
        return str(listed["children"][0]["id"])

    def aep(
        self, method: str, path: str, body: Any = None, *, org: str | None = None, sandbox: str | None = None
    ) -> Any:
        """Call an AEP path with `headers()`; JSON in and out. Raises `AepEmulatorError` unless 2xx."""
        payload = None if body is None else json.dumps(body).encode()
        status, answer = self._http.request(method, path, payload, self.headers(org, sandbox))
        parsed = _json(answer)
        if not 200 <= status < 300:
            raise AepEmulatorError(f"{method} {path} answered {status}: {answer[:500]!r}")
        return parsed

    def force_job(self, job_id: int | str, status: str, errors: list[dict[str, str]] | None = None) -> Any:
        """Put a live job in `status` now, whatever its scenario says."""
        body: dict[str, Any] = {"status": status}
        if errors is not None:
            body["errors"] = errors
        return self.control("POST", f"/jobs/{job_id}/force", body)

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        """Requests your code sent to the AEP surface, oldest first. Filters: `method`, `path` (exact, or a
        glob: `*` within a segment, `**` across them), `status` (`404` or `4xx`), `org`, `sandbox`,
        `since` (emulator time, epoch ms), `job` and `unmatched` (True: near misses only). This client's
        own token requests are left out."""
        entries: list[dict[str, Any]] = []
        start: int | None = 0
        query = {name: _query_value(value) for name, value in filters.items() if value is not None}
        while start is not None:  # the journal comes in pages
            page = self.control("GET", f"/requests?{urlencode({**query, 'start': start, 'limit': 1000})}")
            entries.extend(page["requests"])
            start = page.get("page", {}).get("next")
        return [e for e in entries if not _from_this_client(e)]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The request journal: method, path, query, headers, body, status, tenant, time, duration, job,
        scenario, fault, hint and the response."""
        return self.journal()

    def near_misses(self) -> list[dict[str, Any]]:
        """Requests that missed: no route, refused by the gateway, invalid, or with an ignored parameter;
        each with its `hint` and full `nearMiss` report."""
        return self.journal(unmatched=True)

    def requested(self, method: str | None = None, path: str | None = None, **filters: Any) -> int:
        """How many requests match (`path` exact or a glob, as for `journal`)."""
        return len(self.journal(method=method, path=path, **filters))

    def assert_requested(
        self, method: str, path: str, times: int | None = None, **filters: Any
    ) -> list[dict[str, Any]]:
        """Fail unless `method path` (a glob allowed) was requested `times` times (at least once when
        `times` is None); the message lists what was requested instead. Returns the matching entries."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        matching = self.journal(method=method, path=path, **filters)
        if len(matching) == times or (times is None and matching):
            return matching
        wanted = "at least once" if times is None else _times(times)
        extra = "".join(f" {name}={value}" for name, value in filters.items())
        raise AssertionError(
            f"expected {method} {path}{extra} to be requested {wanted}, but it was requested "
            f"{_times(len(matching))}.\n{self.describe_requests()}"
        )

    def assert_not_requested(self, method: str, path: str, **filters: Any) -> None:
        """Fail if `method path` (a glob allowed) was requested; the message lists what was."""
        __tracebackhide__ = True
        self.assert_requested(method, path, 0, **filters)

    def describe_requests(self, last: int = DESCRIBED_REQUESTS) -> str:
        """The last `last` requests, one per line: method, path, status, hint (as failure reports show)."""
        entries = self.journal()
        return describe(entries, last)

    def har(self, **filters: Any) -> dict[str, Any]:
        """The journal as a HAR 1.2 document (same filters as `journal`); this client's own token requests
        are left out."""
        query = {name: _query_value(value) for name, value in filters.items() if value is not None}
        document: dict[str, Any] = self.control("GET", f"/requests.har?{urlencode(query)}")
        log = document["log"]
        log["entries"] = [e for e in log["entries"] if not _har_from_this_client(e)]
        return document

    def control(self, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
        """Call `/_emulator{path}`; JSON in and out. Raises `NoControlPlane` on a server without one."""
        if not self.has_control_plane:
            raise NoControlPlane(
                f"{self.url} has no emulator control plane ({CONTROL_PREFIX}); this test needs one"
            )
        payload = None if body is None else (body if raw else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if payload is not None and not raw else {}
        status, answer = self._http.request(method, CONTROL_PREFIX + path, payload, headers)
        parsed = _json(answer)
        if not 200 <= status < 300:
            detail = (
                parsed.get("detail", parsed)
                if isinstance(parsed, dict)
                else answer[:500].decode(errors="replace")
            )
            raise AepEmulatorError(f"{method} {CONTROL_PREFIX}{path} answered {status}: {detail}")
        return parsed

    def close(self) -> None:
        self._http.close()
        self._ims.close()

    def __enter__(self) -> AepEmulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def describe(entries: list[dict[str, Any]], last: int = DESCRIBED_REQUESTS) -> str:
    """Journal entries as lines `METHOD path?query -> status  [hint]`, the last `last` of them."""
    if not entries:
        return "No requests reached the emulator."
    shown = entries[-last:]
    head = f"Requests the emulator saw ({len(entries)}" + (
        f", the last {last}" if len(entries) > last else ""
    )
    lines = [head + "):"]
    for entry in shown:
        query = urlencode(entry.get("query") or {})
        line = f"  {entry['method']} {entry['path']}{'?' + query if query else ''} -> {entry['status']}"
        if entry.get("fault"):
            line += f" (fault: {entry['fault']})"
        if entry.get("hint"):
            line += f"\n      hint: {entry['hint']}"
        lines.append(line)
    return "\n".join(lines)


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _har_from_this_client(entry: Mapping[str, Any]) -> bool:
    agents = [h["value"] for h in entry["request"]["headers"] if h["name"].lower() == "user-agent"]
    return agents == [CLIENT_AGENT]


def _from_this_client(entry: Mapping[str, Any]) -> bool:
    agents = [value for name, value in entry["headers"].items() if name.lower() == "user-agent"]
    return agents == [CLIENT_AGENT]


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
