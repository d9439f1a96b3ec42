"""Journal entries as a HAR 1.2 document (HTTP Archive), for the dashboard's "HAR of what is shown"."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from emulator import __version__
from emulator.journal import JournalEntry
from emulator.ui.views import instant

BASE = "http://aep-emulator"  # HAR wants absolute URLs; the journal keeps paths


def document(entries: Iterable[JournalEntry]) -> dict[str, Any]:
    """Oldest first, as HAR viewers expect."""
    ordered = sorted(entries, key=lambda e: e.time)
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "aep-emulator", "version": __version__},
            "pages": [],
            "entries": [_entry(e) for e in ordered],
        }
    }


def _entry(e: JournalEntry) -> dict[str, Any]:
    query = list(e.query.items())
    headers = [{"name": name.lower(), "value": value} for name, value in e.headers.items()]
    request: dict[str, Any] = {
        "method": e.method,
        "url": BASE + e.path + (f"?{urlencode(query)}" if query else ""),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": headers,
        "queryString": [{"name": k, "value": v} for k, v in query],
        "headersSize": -1,
        "bodySize": len(e.body.encode("utf-8")) if e.body else 0,
    }
    if e.body:
        request["postData"] = {"mimeType": e.headers.get("Content-Type", ""), "text": e.body}
    body = e.response_body.decode("utf-8", errors="replace")
    return {
        "startedDateTime": instant(e.time),
        "time": 0,
        "request": request,
        "response": {
            "status": 0 if e.dropped else e.status,
            "statusText": "dropped by a scenario fault" if e.dropped else "",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [],
            "content": {"size": e.response_size, "mimeType": e.response_type, "text": body},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": e.response_size,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 0, "receive": 0},
        "_requestId": e.request_id,
        "_tenant": {"org": e.org, "sandbox": e.sandbox},
    }
