"""The request journal: what clients sent to the AEP surface and what they got, oldest evicted first."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, NamedTuple

from emulator.events import REQUESTS, EventHub
from emulator.jsonio import dumps

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


@dataclass(slots=True)
class JournalEntry:
    """One request. `query`, `headers` and `response_headers` may be the request's and response's own
    views: recording runs on every request and reading the journal is rare, so they are copied only when
    shown. `near_miss` is the full report of a request that did not get what its client meant (see
    emulator/hints.py); `hint` is its one line, sent as the response's `x-emulator-hint`."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: str
    status: int
    org: str | None
    sandbox: str | None
    time: int
    dropped: bool = False  # a scenario fault closed the connection: the client got no answer
    note: str | None = None  # what the emulator did that the client did not ask for
    # The client's x-request-id, or the one an error answered with; None: the journal names the entry.
    request_id: str | None = None
    response_body: bytes = b""  # at most MAX_RESPONSE_BYTES (a streamed or binary body is not kept)
    response_type: str = ""
    response_size: int = 0  # the whole body's length when known
    duration_ms: float = 0.0  # from the request reaching the app to its response being ready (wall time)
    job: str | None = None  # the export job the request concerned
    scenario: str | None = None  # that job's scenario (or the one chosen for a job a fault refused)
    fault: str | None = None  # the scenario fault that answered instead of the service
    hint: str | None = None
    near_miss: dict[str, Any] | None = None
    response_headers: Mapping[str, str] = field(default_factory=dict)
    version: tuple[int, int] = (1, 1)  # the request's HTTP version
    id: int = 0  # the journal's running number for the request, unique in the server's life

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
            entry = replace(entry, path=entry.path[:MAX_OVERSIZED_PATH_CHARS], query={}, headers={})
        if len(entry.body) > MAX_BODY_CHARS:
            cut = len(entry.body) - MAX_BODY_CHARS
            entry = replace(entry, body=f"{entry.body[:MAX_BODY_CHARS]}... [{cut} more characters]")
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
            and (unmatched is None or (e.near_miss is not None) == unmatched)
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
