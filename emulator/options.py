"""The one options object: CLI flags, environment variables and fixture arguments all land here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ClockMode = Literal["real", "manual"]
AuthMode = Literal["open", "strict"]
ValidationMode = Literal["strict", "lenient"]
LogFormat = Literal["text", "json"]

# Names and numbers that several parts (server, test client, plugin) must agree on, defined once.
DEFAULT_SANDBOX = "prod"  # what AEP assumes when a request has no x-sandbox-name
CONTROL_PREFIX = "/_emulator"  # the control plane's paths; never AEP's
TOKEN_LIFETIME_SECONDS = 86399  # IMS access tokens' expires_in

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_JOBS_PER_TENANT = 100_000
DEFAULT_MAX_SEGMENT_JOBS_PROCESSING = 0  # no limit
DEFAULT_JOURNAL_LIMIT = 10_000
DEFAULT_FILE_CACHE_BYTES = 8 * 1024 * 1024
DEFAULT_SAVE_INTERVAL_SECONDS = 5.0
# --speed: finite, above 0 and at most this (a real clock at this speed reaches year 9999 in about 90 days).
MAX_SPEED = 1_000_000.0
# Connections (see emulator/runner.py): aiohttp's own keep-alive default is about an hour, with no limit on
# how long a request head or body may take to arrive, nor on how long a client may leave a response unread.
DEFAULT_KEEPALIVE_TIMEOUT_SECONDS = 15.0  # idle between requests, and a request head still arriving
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0  # a request body, from the first read to its last byte
DEFAULT_SEND_TIMEOUT_SECONDS = 30.0  # a response the client reads none of, before the connection is cut
DEFAULT_MAX_TENANT_BYTES = 64 * 1024 * 1024  # stored dataset and job requests per tenant


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 8080
    scenario_paths: tuple[Path, ...] = ()
    default_scenario: str = "success"
    seed: int = 0
    clock: ClockMode = "real"
    speed: float = 1.0
    start_time_ms: int | None = None
    auth: AuthMode = "open"
    # Request bodies on AEP paths that break their schema: refused (strict) or logged and served (lenient).
    validation: ValidationMode = "strict"
    # API clients IMS accepts (see emulator/tokens.py); None accepts any client id and secret.
    credentials_file: Path | None = None
    # Saved on shutdown and every `save_interval` seconds, loaded on start (emulator/persistence.py).
    state_file: Path | None = None
    save_interval: float = DEFAULT_SAVE_INTERVAL_SECONDS
    log_level: str = "INFO"
    log_format: LogFormat = "text"  # see emulator/logs.py
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Past this many export jobs a tenant's oldest finished one is evicted with its batches; 429 if none is.
    max_jobs_per_tenant: int = DEFAULT_MAX_JOBS_PER_TENANT
    # A tenant's live segment jobs past which a new one is refused with the spec's 429; 0: no limit.
    max_segment_jobs_processing: int = DEFAULT_MAX_SEGMENT_JOBS_PROCESSING
    journal_limit: int = DEFAULT_JOURNAL_LIMIT  # entries; the oldest is evicted first
    file_cache_bytes: int = DEFAULT_FILE_CACHE_BYTES  # exported files kept in an LRU cache
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT_SECONDS
    body_timeout: float = DEFAULT_BODY_TIMEOUT_SECONDS
    send_timeout: float = DEFAULT_SEND_TIMEOUT_SECONDS
    max_tenant_bytes: int = DEFAULT_MAX_TENANT_BYTES
