"""`aep-emulator serve`'s flags, in one table: each flag's name, environment variable, default, value
parser and help agree because they are written once."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.clock import check_speed
from emulator.options import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_FILE_CACHE_BYTES,
    DEFAULT_JOURNAL_LIMIT,
    DEFAULT_KEEPALIVE_TIMEOUT_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_JOBS_PER_TENANT,
    DEFAULT_MAX_SEGMENT_JOBS_PROCESSING,
    DEFAULT_MAX_TENANT_BYTES,
    DEFAULT_SAVE_INTERVAL_SECONDS,
    DEFAULT_SEND_TIMEOUT_SECONDS,
    MAX_SPEED,
)
from emulator.timestamps import rfc3339_ms


class FlagError(Exception):
    """An environment variable's value that its flag refuses; the message names the variable."""


ENV_PREFIX = "AEP_EMULATOR_"
CLOCKS = ("real", "manual")
AUTH_MODES = ("open", "strict")
VALIDATION_MODES = ("strict", "lenient")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
MAX_TIMEOUT_SECONDS = 86400.0


def _rfc3339_ms(text: str) -> int:
    try:
        return rfc3339_ms(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp with an offset: '{text}'") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: '{text}'")
    return value


def _speed(text: str) -> float:
    try:
        return check_speed(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc.args[0].removeprefix('--speed ')} ('{text}')") from None


def _seconds(text: str) -> float:
    """A timeout: seconds, finite, at most a day."""
    value = _positive_float(text)
    if not value <= MAX_TIMEOUT_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_TIMEOUT_SECONDS:g} seconds: '{text}'")
    return value


def count(minimum: int | None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: '{text}'") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}: '{text}'")
        return value

    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: '{text}'") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535: '{text}'")
    return value


# -- serve's flags: one table, so that the flag, its variable, its default and its help agree ------------


@dataclass(frozen=True)
class Flag:
    name: str
    help: str
    default: Any = None
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    shown: str | None = None  # the default as the help shows it, when str(default) would not say it
    repeat: bool = False  # repeatable; the variable holds paths joined by the OS path separator
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.name[2:].replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        shown = self.shown if self.shown is not None else str(self.default)
        parser.add_argument(
            self.name,
            type=self.parse,
            choices=self.choices,
            action="append" if self.repeat else "store",
            default=None,  # None: not on the command line, so the variable (or the default) decides
            metavar=self.metavar,
            help=f"{self.help} (default: {shown}; env {self.env})".replace("%", "%%"),
        )

    def resolve(self, given: Any) -> Any:
        """The flag's value: the command line's, else the environment variable's, else the default."""
        if given is not None:
            return given
        raw = os.environ.get(self.env, "")
        if not raw:  # unset or empty: an empty variable (as compose files write them) means "not set"
            return self.default
        try:
            value = [self.parse(p) for p in raw.split(os.pathsep) if p] if self.repeat else self.parse(raw)
        except argparse.ArgumentTypeError as exc:
            raise FlagError(f"environment variable {self.env}: {exc}") from None
        if self.choices is not None and value not in self.choices:
            raise FlagError(
                f"environment variable {self.env}: invalid choice: '{raw}' "
                f"(choose from {', '.join(self.choices)})"
            )
        return value


SERVE_FLAGS = (
    Flag("--host", "bind address; anything but loopback is reachable from other machines", "127.0.0.1"),
    Flag("--port", "0 picks a free port, named by the ready line", 8080, _port, metavar="PORT"),
    Flag(
        "--scenarios",
        "scenario file or folder, repeatable; a scenario named like a bundled one replaces it",
        [],
        Path,
        shown="none",
        repeat=True,
        metavar="PATH",
    ),
    Flag("--default-scenario", "scenario for jobs nothing else picks one for", "success", metavar="NAME"),
    Flag("--seed", "seed for ids and generated data", 0, count(None), metavar="INT"),
    Flag("--clock", "real: wall time x --speed; manual: frozen until advanced", "real", choices=CLOCKS),
    Flag(
        "--speed",
        f"real-clock speed factor (60: a minute per second), above 0 and at most {MAX_SPEED:,.0f}",
        1.0,
        _speed,
        metavar="X",
    ),
    Flag(
        "--start-time",
        "the clock's start instant, RFC 3339 with an offset",
        None,
        _rfc3339_ms,
        shown="now",
        metavar="RFC3339",
    ),
    Flag(
        "--auth",
        "open: any bearer token; strict: only live tokens minted here, for the client in x-api-key",
        "open",
        choices=AUTH_MODES,
    ),
    Flag(
        "--validation",
        "request bodies that break their schema: refused with 400 (strict), or logged and served where "
        "the emulator can (lenient)",
        "strict",
        choices=VALIDATION_MODES,
    ),
    Flag(
        "--credentials",
        "YAML or JSON file of the client ids, secrets and orgs IMS accepts",
        None,
        Path,
        shown="any client",
        metavar="PATH",
    ),
    Flag(
        "--state-file",
        "save the state there on shutdown and every --save-interval seconds; load it on start",
        None,
        Path,
        shown="none",
        metavar="PATH",
    ),
    Flag(
        "--save-interval",
        "seconds between saves of --state-file",
        DEFAULT_SAVE_INTERVAL_SECONDS,
        _positive_float,
        metavar="SECONDS",
    ),
    Flag(
        "--max-body-bytes",
        "larger request bodies are refused with 413",
        DEFAULT_MAX_BODY_BYTES,
        count(1),
        metavar="N",
    ),
    Flag(
        "--max-jobs-per-tenant",
        "past this, a tenant's oldest finished job is evicted; 429 if none has finished",
        DEFAULT_MAX_JOBS_PER_TENANT,
        count(1),
        metavar="N",
    ),
    Flag(
        "--max-segment-jobs-processing",
        "a tenant's live segment jobs past which a new one gets 429 (too many in processing); 0: no limit",
        DEFAULT_MAX_SEGMENT_JOBS_PROCESSING,
        count(0),
        metavar="N",
    ),
    Flag(
        "--journal-limit",
        "requests the journal keeps, the oldest evicted first",
        DEFAULT_JOURNAL_LIMIT,
        count(0),
        metavar="N",
    ),
    Flag(
        "--file-cache-bytes",
        "bytes of exported files kept in memory, least recently used evicted first",
        DEFAULT_FILE_CACHE_BYTES,
        count(0),
        metavar="N",
    ),
    Flag(
        "--max-tenant-bytes",
        "bytes of dataset and job requests a tenant may store; past it, a create is refused with 413",
        DEFAULT_MAX_TENANT_BYTES,
        count(1),
        metavar="N",
    ),
    Flag(
        "--keepalive-timeout",
        "seconds before a connection that is idle, or still sending its request head, is closed",
        DEFAULT_KEEPALIVE_TIMEOUT_SECONDS,
        _seconds,
        metavar="SECONDS",
    ),
    Flag(
        "--body-timeout",
        "seconds a request body may take to arrive in full; past it, 408",
        DEFAULT_BODY_TIMEOUT_SECONDS,
        _seconds,
        metavar="SECONDS",
    ),
    Flag(
        "--send-timeout",
        "seconds a client may read nothing of a response before its connection is cut",
        DEFAULT_SEND_TIMEOUT_SECONDS,
        _seconds,
        metavar="SECONDS",
    ),
    Flag(
        "--log-level",
        "what the log shows: INFO adds one line per request; WARNING keeps those of near misses",
        "WARNING",
        str.upper,
        choices=LOG_LEVELS,
    ),
    Flag(
        "--log-format",
        "text: one readable line per event; json: one JSON object per line (request lines carry requestId, "
        "org, sandbox, method, path, status, durationMs, job, scenario, fault, hint)",
        "text",
        choices=LOG_FORMATS,
    ),
)
FLAGS = {flag.dest: flag for flag in SERVE_FLAGS}
