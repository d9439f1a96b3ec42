"""The one options object: CLI flags, environment variables and fixture arguments all land here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ClockMode = Literal["real", "manual"]
AuthMode = Literal["open", "strict"]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


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
    # API clients IMS accepts (see emulator/tokens.py); None accepts any client id and secret.
    credentials_file: Path | None = None
    state_file: Path | None = None
    log_level: str = "INFO"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    journal_limit: int = 10_000
    extra: dict[str, str] = field(default_factory=dict)
