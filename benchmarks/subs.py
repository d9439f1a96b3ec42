"""The other benchmarks of this folder, each run as a subprocess pinned to the servers' core."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.servers import Cpus, log

HERE = Path(__file__).resolve().parent
SUB_TIMEOUT_S = 240
SUB_TIMEOUT_QUICK_S = 90


@dataclass(frozen=True)
class SubBenchmark:
    module: str  # benchmarks/<module>.py, run as `python -m benchmarks.<module>`
    title: str


SUB_BENCHMARKS = (
    SubBenchmark("profiles_bench", "profile generation"),
    SubBenchmark("membership_bench", "PQL membership"),
    SubBenchmark("memory_bench", "export memory"),
    SubBenchmark("fixture_bench", "pytest fixture"),
    SubBenchmark("health_bench", "health during a big download"),
)


def run_sub(bench: SubBenchmark, cpus: Cpus, quick: bool) -> dict[str, Any]:
    """Its last stdout line as JSON, or why there is none; pinned to the server core, bounded in time."""
    source = HERE / f"{bench.module}.py"
    if not source.exists():
        return {"available": False, "reason": f"not available (no benchmarks/{bench.module}.py)"}
    argv = [*cpus.prefix(cpus.server), sys.executable, "-m", f"benchmarks.{bench.module}"]
    if quick and "--quick" in source.read_text():
        argv.append("--quick")
    log(f"running {bench.module}")
    started = time.perf_counter()
    timeout = SUB_TIMEOUT_QUICK_S if quick else SUB_TIMEOUT_S
    try:
        done = subprocess.run(
            argv, cwd=HERE.parent, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"available": False, "reason": f"timed out after {timeout} s"}
    seconds = round(time.perf_counter() - started, 1)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        found = json.loads(lines[-1]) if lines else None
    except ValueError:
        found = None
    if done.returncode != 0 or not isinstance(found, dict):
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {
            "available": False,
            "reason": f"exit {done.returncode}, no JSON last line: {' / '.join(tail)[:300]}",
            "seconds": seconds,
        }
    return {"available": True, "seconds": seconds, "result": found}
