"""Journal entries as a HAR 1.2 document (HTTP Archive), for the dashboard's "HAR of what is shown": the
same document as GET /_emulator/requests.har (emulator/har.py), for the entries the dashboard shows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emulator import har
from emulator.journal import JournalEntry

BASE = "http://aep-emulator"  # HAR wants absolute URLs; the journal keeps paths


def document(entries: Iterable[JournalEntry]) -> dict[str, Any]:
    """Oldest first, as HAR viewers expect."""
    return har.document(sorted(entries, key=lambda e: e.id), BASE)
