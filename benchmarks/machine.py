"""The machine a run measures on: its tools (wrk), how busy it is, what it is, and what tree was measured."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.servers import log

HERE = Path(__file__).resolve().parent
QUIET_BUSY_PERCENT = 10.0
NOISY_OTHER_CPUS = 0.2  # other processes' average CPU use during the run above which we warn


def ensure_wrk() -> str:
    """Debian's wrk, installed with apt-get when missing (the machine's own package manager, as root)."""
    if shutil.which("wrk") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise SystemExit("wrk is missing: install it (Debian/Ubuntu: apt-get install -y wrk)")
        log("installing wrk with apt-get")
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
            subprocess.run(install, capture_output=True, check=False)
        if shutil.which("wrk") is None:
            raise SystemExit("could not install wrk with apt-get; install it by hand")
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (version.stdout or version.stderr).splitlines()[0].strip()


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Percent of all CPUs busy over `seconds`: other load skews every ratio."""
    try:
        busy_before, total_before = _busy_jiffies()
        time.sleep(seconds)
        busy_after, total_after = _busy_jiffies()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return round(100 * (busy_after - busy_before) / total, 1) if total else None


class OtherLoad:
    """CPUs used by processes other than this run (this process, the servers, wrk and the other
    benchmarks are all waited-for children) while it lasted: the machine's busy time minus ours."""

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            busy, _ = _busy_jiffies()
        except (OSError, ValueError, IndexError):
            return None
        own = os.times()
        ours = own.user + own.system + own.children_user + own.children_system
        return busy / os.sysconf("SC_CLK_TCK"), ours, time.monotonic()

    def cpus(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None or end[2] <= self._start[2]:
            return None
        others = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return round(max(0.0, others) / (end[2] - self._start[2]), 2)


def wait_until_quiet(limit_s: float) -> float | None:
    """Sample until the machine is quiet (or `limit_s` runs out); returns the last busy percent."""
    deadline = time.monotonic() + limit_s
    busy = cpu_busy()
    while busy is not None and busy > QUIET_BUSY_PERCENT and time.monotonic() < deadline:
        log(f"machine {busy:.0f}% busy; waiting for it to be quiet")
        busy = cpu_busy(2.0)
    return busy


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        total_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory_gb = round(total_kb / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": model or platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("aep-emulator", "aiohttp", "jsonschema", "pyarrow", "faker"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def tree_hash() -> str:
    """What was measured, even in an uncommitted tree: a digest of the package, schemas and scenarios."""
    digest = hashlib.sha256()
    root = HERE.parent
    for folder in ("emulator", "schemas", "scenarios"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".json", ".yaml", ".yml"):
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
