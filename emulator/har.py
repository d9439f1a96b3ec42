"""The journal as an HTTP Archive (HAR 1.2, http://www.softwareishard.com/blog/har-12-spec/).

Each entry is one journaled request and its response: headers, query, bodies (the journal's heads of them:
request bodies up to journal.MAX_BODY_CHARS characters, text response bodies up to
journal.MAX_RESPONSE_BYTES bytes; a cut body says so in its `comment`), timings (the emulator's own
handling time, as `wait`), and the near-miss hint as the entry's `comment`. Emulator-specific facts go in
fields prefixed with `_`, which HAR allows: `_emulator` holds the journal entry's id, tenant, emulator time,
job, scenario, fault and full near-miss report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

from emulator import __version__
from emulator.journal import MAX_BODY_CHARS, MAX_RESPONSE_BYTES, JournalEntry

HAR_VERSION = "1.2"
PATH_SAFE = "/%:@!$&'()*+,;=-._~"  # RFC 3986 pchar (and `/`), left as they are


def document(entries: Iterable[JournalEntry], origin: str, comment: str = "") -> dict[str, Any]:
    """A HAR `log` of `entries`, their URLs under `origin` (`http://127.0.0.1:8080`)."""
    log: dict[str, Any] = {
        "version": HAR_VERSION,
        "creator": {"name": "aep-emulator", "version": __version__},
        "pages": [],
        "entries": [entry_json(entry, origin) for entry in entries],
    }
    if comment:
        log["comment"] = comment
    return {"log": log}


def entry_json(entry: JournalEntry, origin: str) -> dict[str, Any]:
    duration = max(round(entry.duration_ms, 3), 0.0)
    har: dict[str, Any] = {
        "startedDateTime": _iso(entry.time),
        "time": duration,
        "request": _request(entry, origin),
        "response": _response(entry),
        "cache": {},
        "timings": {
            "blocked": -1,
            "dns": -1,
            "connect": -1,
            "send": 0,
            "wait": duration,
            "receive": 0,
            "ssl": -1,
        },
        "_emulator": {
            "id": entry.id,
            "time": entry.time,
            "tenant": {"org": entry.org, "sandbox": entry.sandbox},
            "requestId": entry.request_id,
            "job": entry.job,
            "scenario": entry.scenario,
            "fault": entry.fault,
            "dropped": entry.dropped,
            "note": entry.note,
            "nearMiss": entry.near_miss,
        },
    }
    # The dashboard's names, kept: the entry's request id (its rows' data-request-id) and tenant.
    har["_requestId"] = entry.request_id
    har["_tenant"] = {"org": entry.org, "sandbox": entry.sandbox}
    if entry.hint:
        har["comment"] = entry.hint
    return har


def _request(entry: JournalEntry, origin: str) -> dict[str, Any]:
    query = dict(entry.query)
    # The path as sent, percent-encoded where a URI may not hold it (control characters, spaces, non-ASCII).
    url = origin + quote(entry.path, safe=PATH_SAFE) + (f"?{urlencode(query)}" if query else "")
    headers = _headers(entry.headers)
    request: dict[str, Any] = {
        "method": entry.method,
        "url": url,
        "httpVersion": entry.http_version,
        "cookies": [],
        "headers": headers,
        "queryString": [{"name": name, "value": value} for name, value in query.items()],
        "headersSize": -1,
        "bodySize": len(entry.body.encode()) if entry.body else 0,
    }
    if entry.body:
        mime = next((h["value"] for h in headers if h["name"].lower() == "content-type"), "")
        post: dict[str, Any] = {"mimeType": mime, "text": entry.body}
        if len(entry.body) >= MAX_BODY_CHARS:
            post["comment"] = f"the journal keeps the first {MAX_BODY_CHARS} characters of a request body"
            request["bodySize"] = -1
        request["postData"] = post
    return request


def _response(entry: JournalEntry) -> dict[str, Any]:
    headers = _headers(entry.response_headers)
    content: dict[str, Any] = {"size": entry.response_size, "mimeType": entry.response_type}
    if entry.dropped:
        content["comment"] = "a scenario fault closed the connection: the client got no answer"
    elif entry.response_body:
        content["text"] = entry.response_body.decode("utf-8", errors="replace")
        if entry.truncated:
            content["comment"] = f"the journal keeps the first {MAX_RESPONSE_BYTES} bytes of a body"
    elif entry.response_size:
        content["comment"] = "binary or streamed body: not kept by the journal"
    try:
        reason = HTTPStatus(entry.status).phrase
    except ValueError:
        reason = ""
    return {
        "status": 0 if entry.dropped else entry.status,
        "statusText": "" if entry.dropped else reason,
        "httpVersion": entry.http_version,
        "cookies": [],
        "headers": headers,
        "content": content,
        "redirectURL": next((h["value"] for h in headers if h["name"].lower() == "location"), ""),
        "headersSize": -1,
        "bodySize": -1 if entry.dropped else entry.response_size,
    }


def _headers(headers: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers.items()]


def _iso(epoch_ms: int) -> str:
    return (
        datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
