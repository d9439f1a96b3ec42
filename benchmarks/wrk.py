"""`wrk` runs: a Lua script per request shape, and one machine-readable result line per run."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.servers import Config, Cpus

WRK_MARK = "WRK-RESULT "


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.requests > 0 and not any(self.errors.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def lua_script(method: str, headers: dict[str, str], body: str | None) -> str:
    """A wrk script: the request, and a `done` hook that prints one machine-readable line."""
    lines = [f'wrk.method = "{method}"']
    for name, value in headers.items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    if body is not None:
        lines.append(f"wrk.body = [==[{body}]==]")
    lines.append(
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        f"  io.write(string.format('{WRK_MARK}"
        '{"requests":%.0f,"duration_us":%.0f,"p50_us":%.1f,"p99_us":%.1f,"mean_us":%.1f,'
        '"max_us":%.1f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}\\n\','
        "\n    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),"
        "\n    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))\n"
        "end"
    )
    return "\n".join(lines) + "\n"


class Wrk:
    def __init__(self, config: Config, cpus: Cpus, folder: Path):
        self.config = config
        self.cpus = cpus
        self.folder = folder
        self._scripts = 0

    def script(self, method: str, headers: dict[str, str], body: Any = None) -> Path:
        self._scripts += 1
        path = self.folder / f"request-{self._scripts}.lua"
        path.write_text(lua_script(method, headers, None if body is None else json.dumps(body)))
        return path

    def warm(self, url: str, script: Path, *, connections: int | None = None) -> None:
        """A discarded run of `config.warmup` seconds, so that the measured ones see a warmed-up server."""
        if self.config.warmup > 0:
            self._once(url, script, connections or self.config.connections, self.config.warmup)

    def measure(
        self, url: str, script: Path, *, connections: int | None = None, duration: int | None = None
    ) -> WrkResult:
        return self._once(
            url, script, connections or self.config.connections, duration or self.config.duration
        )

    def _once(self, url: str, script: Path, connections: int, duration: int) -> WrkResult:
        argv = [
            *self.cpus.prefix(self.cpus.load),
            "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url,
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
        for line in done.stdout.splitlines():
            if line.startswith(WRK_MARK):
                raw = json.loads(line.removeprefix(WRK_MARK))
                seconds = raw["duration_us"] / 1e6
                return WrkResult(
                    requests=int(raw["requests"]),
                    duration_s=round(seconds, 3),
                    rps=round(raw["requests"] / seconds, 1) if seconds else 0.0,
                    p50_ms=round(raw["p50_us"] / 1000, 3),
                    p99_ms=round(raw["p99_us"] / 1000, 3),
                    mean_ms=round(raw["mean_us"] / 1000, 3),
                    max_ms=round(raw["max_us"] / 1000, 3),
                    errors={k: int(raw[k]) for k in ("connect", "read", "write", "status", "timeout")},
                )
        raise RuntimeError(f"wrk gave no result (exit {done.returncode}): {done.stdout}{done.stderr}")
