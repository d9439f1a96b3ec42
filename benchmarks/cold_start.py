"""Cold start alone: the floor and `aep-emulator serve` (optionally several trees of it) started alternately,
each timed from spawn to its first 200, pinned as the full benchmark pins them.

Besides the wall-clock time (what the benchmark's row reports, and what a busy machine moves most) it
reports the server's own CPU time up to its first 200 (from /proc/<pid>/task/*/schedstat, nanoseconds on a
CPU), which other load on the machine hardly moves: the measure to compare two trees by.

    python -m benchmarks.cold_start [--rounds 11] [--tree before=/path/to/other/checkout ...]

Each `--tree NAME=PATH` is an emulator started as `python -m emulator serve` from PATH (its own `emulator`
package comes first on sys.path); without one, the emulator of this checkout is measured. Every tree is
byte-compiled first, as the full benchmark does (`--no-compile`: started from whatever bytecode the trees
have, none under PYTHONDONTWRITEBYTECODE). The last stdout line is JSON: per server its samples, min and
median, and the ratio of medians to the floor's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.servers import HEALTH, HOST, REPO, byte_compile, free_port, pick_cpus, wait_for_200


def _cpu_ms(pid: int) -> float:
    """CPU time of every thread of `pid` so far, in ms (a finished thread's time is in its group's)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e6


def cold_start(argv: list[str], cwd: Path, path: str, prefix: list[str]) -> tuple[float, float]:
    """(wall ms, server CPU ms) from spawn to the first 200 on `path`."""
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*prefix, *argv, "--host", HOST, "--port", str(port)],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_200(port, path, started, lambda: proc.poll() is None, argv)
        return (time.perf_counter() - started) * 1000, _cpu_ms(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _summary(samples: list[float]) -> dict[str, Any]:
    return {
        "samples": [round(s, 1) for s in samples],
        "min": round(min(samples), 1),
        "median": round(statistics.median(samples), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="do not byte-compile the trees first (see servers.byte_compile)",
    )
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree) or {"emulator": str(REPO)}
    if not args.no_compile:
        for tree in {REPO, *map(Path, trees.values())}:
            byte_compile(tree)
    servers: dict[str, tuple[list[str], Path, str]] = {
        "floor": ([sys.executable, "-m", "benchmarks.floor"], REPO, "/"),
        **{name: ([sys.executable, "-m", "emulator", "serve"], Path(p), HEALTH) for name, p in trees.items()},
    }
    cpus = pick_cpus()
    prefix = cpus.prefix(cpus.server)
    wall: dict[str, list[float]] = {name: [] for name in servers}
    cpu: dict[str, list[float]] = {name: [] for name in servers}
    for index in range(args.rounds):
        for name, (argv, cwd, path) in servers.items():
            w, c = cold_start(argv, cwd, path, prefix)
            wall[name].append(w)
            cpu[name].append(c)
            print(f"round {index + 1}/{args.rounds} {name}: {w:.1f} ms wall, {c:.1f} ms CPU", file=sys.stderr)
    found: dict[str, Any] = {}
    for name in servers:
        found[name] = {"wall_ms": _summary(wall[name]), "cpu_ms": _summary(cpu[name])}
        if name != "floor":
            found[name]["ratio_wall"] = round(
                found[name]["wall_ms"]["median"] / found["floor"]["wall_ms"]["median"], 3
            )
            found[name]["ratio_cpu"] = round(
                found[name]["cpu_ms"]["median"] / found["floor"]["cpu_ms"]["median"], 3
            )
    for name, result in found.items():
        ratios = (
            f"  ratio {result['ratio_wall']}x wall, {result['ratio_cpu']}x CPU" if name != "floor" else ""
        )
        print(
            f"{name:>10}: wall min/median {result['wall_ms']['min']}/{result['wall_ms']['median']} ms, "
            f"CPU min/median {result['cpu_ms']['min']}/{result['cpu_ms']['median']} ms{ratios}",
            file=sys.stderr,
        )
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
