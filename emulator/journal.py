"""The request journal: what clients sent to the AEP surface and what they got, oldest evicted first."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from emulator.events import REQUESTS, EventHub
from emulator.jsonio import dumps

# Bodies may be as large as --max-body-bytes allows and the journal holds thousands of entries: keep the head.
MAX_BODY_CHARS = 64 * 1024
# Response bodies are kept as the bytes the client got (no copy) up to this size, and cut to it past it.
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


class Page(NamedTuple):
    entries: list[bytes]  # each entry's JSON, encoded
    matching: int  # entries matching the filters, in all pages
    next: int | None  # where the next page starts; None after the last
    truncated: bool  # the page stopped at PAGE_MAX_BYTES before `limit`


@dataclass(slots=True)
class JournalEntry:
    """One request. `query` and `headers` may be the request's own read-only views: recording runs on every
    request and reading the journal is rare, so they are copied only when shown."""

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
    response_body: bytes = b""  # at most MAX_RESPONSE_BYTES (a streamed file body is not kept)
    response_type: str = ""
    response_size: int = 0  # the whole body's length when known

    def to_json(self) -> dict[str, Any]:
        return {
            "requestId": self.request_id or "",  # recorded entries always have one
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            # Header names are case-insensitive and clients re-case them: show them in one case.
            "headers": {name.lower(): value for name, value in dict(self.headers).items()},
            "body": self.body,
            "status": self.status,
            "time": self.time,
            "dropped": self.dropped,
            "note": self.note,
            "tenant": {"org": self.org, "sandbox": self.sandbox},
            "response": {
                "contentType": self.response_type,
                "size": self.response_size,
                "body": self.response_body.decode("utf-8", errors="replace"),
                "truncated": self.response_size > len(self.response_body),
            },
        }


class Journal:
    def __init__(self, limit: int, events: EventHub | None = None):
        self._entries: deque[JournalEntry] = deque(maxlen=limit)
        self._events = events or EventHub()
        # Counts clears (a reset, DELETE /_emulator/requests): a request records the epoch it started in,
        # and its entry is dropped if the journal was cleared meanwhile.
        self.epoch = 0
        self._recorded = 0  # entries ever recorded: names an entry whose request carried no id

    def record(self, entry: JournalEntry, epoch: int | None = None) -> None:
        """Append `entry`, unless the request started (at `epoch`) before the journal was last cleared."""
        if epoch is not None and epoch != self.epoch:
            return
        if entry.status in OVERSIZED:
            entry = replace(entry, path=entry.path[:MAX_OVERSIZED_PATH_CHARS], query={}, headers={})
        self._recorded += 1
        if entry.request_id is None:
            entry.request_id = f"emulator-{self._recorded}"
        if len(entry.body) > MAX_BODY_CHARS:
            cut = len(entry.body) - MAX_BODY_CHARS
            entry = replace(entry, body=f"{entry.body[:MAX_BODY_CHARS]}... [{cut} more characters]")
        self._entries.append(entry)
        self._events.publish(REQUESTS)

    def clear(self) -> None:
        self._entries.clear()
        self.epoch += 1

    def page(self, filters: Mapping[str, str], start: int, limit: int) -> Page:
        """Entries `start` to `start + limit` of those matching `filters`, encoded, within PAGE_MAX_BYTES."""
        matching = self.entries(filters)
        encoded: list[bytes] = []
        size = 0
        for entry in matching[start : start + limit]:
            data = dumps(entry.to_json())
            if encoded and size + len(data) > PAGE_MAX_BYTES:
                break
            encoded.append(data)
            size += len(data) + 1
        end = start + len(encoded)
        return Page(
            encoded,
            len(matching),
            end if end < len(matching) else None,
            len(encoded) < limit and end < len(matching),
        )

    def entries(self, filters: Mapping[str, str]) -> list[JournalEntry]:
        """Filter by `method`, `path` (prefix), `org` and `sandbox`."""
        method = filters.get("method", "").upper()
        path = filters.get("path", "")
        org = filters.get("org")
        sandbox = filters.get("sandbox")
        return [
            e
            for e in self._entries
            if (not method or e.method == method)
            and e.path.startswith(path)
            and (org is None or e.org == org)
            and (sandbox is None or e.sandbox == sandbox)
        ]
