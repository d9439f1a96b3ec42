"""The request journal: what clients sent to the AEP surface and what they got, oldest evicted first."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from emulator.events import REQUESTS, EventHub
from emulator.jsonio import dumps

if TYPE_CHECKING:
    from emulator.hints import NearMiss

# Bodies may be as large as --max-body-bytes allows and the journal holds thousands of entries: keep the head.
MAX_BODY_CHARS = 64 * 1024
# Response bodies are kept as the bytes the client got (no copy) up to this size, and cut to it past it
# (JSON and text bodies only: not the bytes of exported files).
MAX_RESPONSE_BYTES = 16 * 1024
# A request refused for the size of its URL or headers (414, 431) keeps its method, status and the head of
# its path only: the app's limits bound every other entry's URL and headers, not these.
OVERSIZED = frozenset({414, 431})
MAX_OVERSIZED_PATH_CHARS = 1024
# GET /_emulator/requests comes in pages: `limit` entries (this by default, PAGE_MAX at most), and no more
# than PAGE_MAX_BYTES of them (at least one entry, whatever its size), so that the journal's full length
# (--journal-limit entries of up to MAX_BODY_CHARS each) is never encoded in one answer.
PAGE_DEFAULT = 100
PAGE_MAX = 1000
PAGE_MAX_BYTES = 8 * 1024 * 1024
MAX_START = 2**31 - 1  # `start` past this is refused (JSON-safe, and past any journal's length)
# The filters GET /_emulator/requests (and requests.har) understands; anything else there is a 400.
FILTERS = ("method", "path", "status", "org", "sandbox", "since", "job", "unmatched")


class FilterError(ValueError):
    """A filter value the journal cannot use; the message names the parameter."""


class Page(NamedTuple):
    entries: list[JournalEntry]
    matching: int  # entries matching the filters, in all pages
    next: int | None  # where the next page starts; None after the last


class Target(Protocol):
    """A request's target as aiohttp parsed it (a yarl URL): the path and query, decoded."""

    @property
    def path(self) -> str: ...

    @property
    def query(self) -> Mapping[str, str]: ...


class _CutTarget(NamedTuple):
    """What an oversized request's entry keeps of its target: the head of its path."""

    path: str
    query: Mapping[str, str]


class JournalEntry:
    """One request, kept as cheaply as a request allows: recording runs on every request and reading the
    journal is rare, so an entry holds what the request and its answer already are (the URL, the header
    views, the body bytes up to MAX_RESPONSE_BYTES) and derives the rest (path, query, the response's
    media type, the near-miss report's JSON) when it is read. `miss` is the near-miss report of a request
    that did not get what its client meant (see emulator/hints.py); its one line is the response's
    `x-emulator-hint`."""

    __slots__ = (
        "body",
        "dropped",
        "duration_ms",
        "fault",
        "headers",
        "id",
        "job",
        "method",
        "miss",
        "note",
        "org",
        "request_id",
        "response_body",
        "response_headers",
        "response_size",
        "sandbox",
        "scenario",
        "status",
        "time",
        "url",
        "version",
    )

    def __init__(
        self,
        method: str,
        url: Target,
        headers: Mapping[str, str],
        body: str,
        status: int,
        org: str | None,
        sandbox: str | None,
        time: int,
        *,
        dropped: bool = False,  # a scenario fault closed the connection: the client got no answer
        note: str | None = None,  # what the emulator did that the client did not ask for
        # The client's x-request-id, or the one an error answered with; None: the journal names the entry.
        request_id: str | None = None,
        response_body: bytes = b"",  # at most MAX_RESPONSE_BYTES (a streamed or binary body is not kept)
        response_size: int = 0,  # the whole body's length when known
        response_headers: Mapping[str, str] | None = None,
        duration_ms: float = 0.0,  # from the request reaching the app to its response being ready (wall time)
        job: str | None = None,  # the export job the request concerned
        scenario: str | None = None,  # that job's scenario (or the one chosen for a job a fault refused)
        fault: str | None = None,  # the scenario fault that answered instead of the service
        miss: NearMiss | None = None,
        version: tuple[int, int] = (1, 1),  # the request's HTTP version
    ):
        self.method = method
        self.url = url  # the request target: path and query are read from it
        self.headers = headers
        self.body = body
        self.status = status
        self.org = org
        self.sandbox = sandbox
        self.time = time
        self.dropped = dropped
        self.note = note
        self.request_id = request_id
        self.response_body = response_body
        self.response_size = response_size
        self.response_headers = response_headers if response_headers is not None else {}
        self.duration_ms = duration_ms
        self.job = job
        self.scenario = scenario
        self.fault = fault
        self.miss = miss
        self.version = version
        self.id = 0  # the journal's running number for the request, unique in the server's life

    @property
    def path(self) -> str:
        return self.url.path

    @property
    def query(self) -> Mapping[str, str]:
        return self.url.query

    @property
    def response_type(self) -> str:
        """The response's media type, without parameters."""
        content_type = self.response_headers.get("Content-Type", "")
        return content_type.partition(";")[0].strip().lower()

    @property
    def hint(self) -> str | None:
        return self.miss.hint if self.miss is not None else None

    @property
    def near_miss(self) -> dict[str, Any] | None:
        return self.miss.to_json() if self.miss is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "requestId": self.request_id or "",  # recorded entries always have one
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            # Header names are case-insensitive and clients re-case them: show them in one case.
            "headers": {name.lower(): value for name, value in dict(self.headers).items()},
            "body": self.body,
            "status": self.status,
            "time": self.time,
            "durationMs": round(self.duration_ms, 3),
            "job": self.job,
            "scenario": self.scenario,
            "fault": self.fault,
            "dropped": self.dropped,
            "note": self.note,
            "hint": self.hint,
            "nearMiss": self.near_miss,
            "tenant": {"org": self.org, "sandbox": self.sandbox},
            "response": {
                "contentType": self.response_type,
                "size": self.response_size,
                "body": self.response_body.decode("utf-8", errors="replace"),
                "truncated": self.truncated,
                "headers": {name.lower(): value for name, value in dict(self.response_headers).items()},
            },
        }

    @property
    def http_version(self) -> str:
        return f"HTTP/{self.version[0]}.{self.version[1]}"

    @property
    def truncated(self) -> bool:
        """The kept body is shorter than the one the client got."""
        return self.response_size > len(self.response_body)


class Journal:
    def __init__(self, limit: int, events: EventHub | None = None):
        self._entries: deque[JournalEntry] = deque(maxlen=limit)
        self._events = events or EventHub()
        # Counts clears (a reset, DELETE /_emulator/requests): a request records the epoch it started in,
        # and its entry is dropped if the journal was cleared meanwhile.
        self.epoch = 0
        self.recorded = 0  # entries ever recorded: each entry's `id` (and name, when it carried no id)

    def record(self, entry: JournalEntry, epoch: int | None = None) -> None:
        """Append `entry`, unless the request started (at `epoch`) before the journal was last cleared."""
        if epoch is not None and epoch != self.epoch:
            return
        self.recorded += 1
        entry.id = self.recorded
        if entry.request_id is None:
            entry.request_id = f"emulator-{self.recorded}"
        if entry.status in OVERSIZED:
            entry.url = _CutTarget(entry.path[:MAX_OVERSIZED_PATH_CHARS], {})
            entry.headers = {}
        if len(entry.body) > MAX_BODY_CHARS:
            cut = len(entry.body) - MAX_BODY_CHARS
            entry.body = f"{entry.body[:MAX_BODY_CHARS]}... [{cut} more characters]"
        self._entries.append(entry)
        self._events.publish(REQUESTS)

    def clear(self) -> None:
        self._entries.clear()
        self.epoch += 1

    def page(self, filters: Mapping[str, str], start: int, limit: int) -> Page:
        """Entries `start` to `start + limit` of those matching `filters`."""
        matching = self.entries(filters)
        chosen = matching[start : start + limit]
        end = start + len(chosen)
        return Page(chosen, len(matching), end if end < len(matching) else None)

    def encoded_page(self, filters: Mapping[str, str], start: int, limit: int) -> tuple[list[bytes], Page]:
        """`page`, each entry's JSON encoded, within PAGE_MAX_BYTES (the page's `next` moved back to
        where the bytes ran out)."""
        page = self.page(filters, start, limit)
        encoded: list[bytes] = []
        size = 0
        for entry in page.entries:
            data = dumps(entry.to_json())
            if encoded and size + len(data) > PAGE_MAX_BYTES:
                break
            encoded.append(data)
            size += len(data) + 1
        if len(encoded) < len(page.entries):
            page = Page(page.entries[: len(encoded)], page.matching, start + len(encoded))
        return encoded, page

    def entries(self, filters: Mapping[str, str]) -> list[JournalEntry]:
        """Filter by `method`, `path` (exact, or a glob: see `path_matcher`), `status` (a code, or a class
        such as `4xx`), `org`, `sandbox`, `since` (emulator time, epoch ms, inclusive), `job` and
        `unmatched` (`true`: near misses only; `false`: the others). Raises FilterError on a bad value."""
        method = filters.get("method", "").upper()
        path = filters.get("path")
        matches_path = path_matcher(path) if path else None
        statuses = _status_filter(filters.get("status"))
        org = filters.get("org")
        sandbox = filters.get("sandbox")
        since = _since_filter(filters.get("since"))
        job = filters.get("job")
        unmatched = _flag_filter("unmatched", filters.get("unmatched"))
        return [
            e
            for e in self._entries
            if (not method or e.method == method)
            and (matches_path is None or matches_path(e.path))
            and (statuses is None or e.status in statuses)
            and (org is None or e.org == org)
            and (sandbox is None or e.sandbox == sandbox)
            and (since is None or e.time >= since)
            and (job is None or e.job == job)
            and (unmatched is None or (e.miss is not None) == unmatched)
        ]


@lru_cache(maxsize=64)
def path_matcher(pattern: str) -> Any:
    """A predicate on paths: equality, or a glob when `pattern` has `*` or `?`. In a glob, `*` stands for
    one or more characters within a path segment (never `/`), `**` for any characters, `/` included, and
    `?` for one character other than `/`: `/data/core/ups/export/jobs/*` matches each job's path but not
    the list's (with or without its trailing slash); `/data/core/ups/**` matches everything under it."""
    if "*" not in pattern and "?" not in pattern:
        return pattern.__eq__
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wild = {"**": ".*", "*": "[^/]+", "?": "[^/]"}
    regex = "".join(wild.get(part, re.escape(part)) for part in parts)
    return re.compile(regex).fullmatch


def _status_filter(value: str | None) -> frozenset[int] | range | None:
    if value is None:
        return None
    if re.fullmatch(r"[1-5]xx", value, flags=re.IGNORECASE):
        first = int(value[0]) * 100
        return range(first, first + 100)
    if re.fullmatch(r"[1-5][0-9][0-9]", value):
        return frozenset({int(value)})
    raise FilterError(f"Query parameter 'status' must be a status code or a class such as 4xx, got '{value}'")


def _since_filter(value: str | None) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{1,16}", value):
        raise FilterError(f"Query parameter 'since' must be an emulator time in epoch ms, got '{value}'")
    return int(value)


def _flag_filter(name: str, value: str | None) -> bool | None:
    if value is None:
        return None
    if value not in ("true", "false"):
        raise FilterError(f"Query parameter '{name}' must be true or false, got '{value}'")
    return value == "true"
