"""The log: its two formats (`--log-format text|json`) and the one line per request.

Every request gets one line on the `emulator.requests` logger: INFO when it was served as asked, WARNING
when it was a near miss (the line carries the hint). Other log lines (startup, saves, lenient validation)
use the same format, so a JSON log is JSON on every line.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from emulator.jsonio import dumps

REQUESTS = logging.getLogger("emulator.requests")
# The fields of a request's line, in the order the text format shows them.
FIELDS = (
    "requestId",
    "org",
    "sandbox",
    "method",
    "path",
    "status",
    "durationMs",
    "job",
    "scenario",
    "fault",
    "hint",
)
IN_MESSAGE = frozenset({"method", "path", "status", "hint"})  # what the text format shows in the message
REQUEST_ATTR = "aep_request"  # the LogRecord attribute that carries a request's fields


def log_request(fields: dict[str, Any], *, near_miss: bool) -> None:
    """One line for one request; the caller checks `wanted(near_miss)` first."""
    if near_miss:  # the hint in the message too: log handlers that show only messages (pytest's) show it
        REQUESTS.warning(
            "%s %s %s: %s", fields["method"], fields["path"], fields["status"], fields["hint"],
            extra={REQUEST_ATTR: fields},
        )  # fmt: skip
    else:
        REQUESTS.info(
            "%s %s %s", fields["method"], fields["path"], fields["status"], extra={REQUEST_ATTR: fields}
        )


def wanted(near_miss: bool) -> bool:
    """Whether a request's line would be written (cheap: the logging module caches the answer)."""
    return REQUESTS.isEnabledFor(logging.WARNING if near_miss else logging.INFO)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, and for a request `key=value` pairs (values with spaces quoted)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, REQUEST_ATTR, None)
        if fields is None:
            return line
        pairs = " ".join(f"{key}={_text(fields.get(key))}" for key in FIELDS if key not in IN_MESSAGE)
        return f"{line} {pairs}"


def _text(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    if not text or any(c in text for c in ' "=\\') or not text.isprintable():
        return dumps(text).decode()
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time` (UTC, RFC 3339), `level`, `logger`, `message`, a request's fields,
    and `exception` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, REQUEST_ATTR, None)
        if fields is not None:
            document.update(fields)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


def configure(level: str, log_format: str) -> None:
    """The process's log (for `aep-emulator serve`): stderr, at `level`, in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
