"""What a fresh `aep_emulator` fixture costs per test.

Runs pytest in a subprocess over generated test files (N trivial tests per variant) with a tiny plugin
that times each test's setup, call and teardown phases, then prints per-test milliseconds:

- `aep_emulator`: the fixture alone (a reset of the session's server through the control plane);
  the first test, which also starts the server, is reported separately;
- `aep_emulator + headers()`: the same plus the first `headers()` call of a test (mints an IMS token);
- `aep_emulator_app`: a fresh in-process aiohttp Application (for `aiohttp_client`);
- the overhead per test over N tests that use no fixture at all, from wall-clock totals.

The last line printed is one JSON object for `python -m benchmarks`: `fixture_ms` is the mean setup plus
teardown per test of the costlier fixture (`aep_emulator` or `aep_emulator_app`), first test excluded.

Usage: python -m benchmarks.fixture_bench [--tests 500] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TIMER_PLUGIN = """
import json, os, time
import pytest

TIMES = []

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    item.phase_times = {}
    yield
    TIMES.append({"name": item.name, **item.phase_times})

def _timed(phase):
    @pytest.hookimpl(hookwrapper=True)
    def hook(item, *args):
        start = time.perf_counter()
        yield
        item.phase_times[phase] = time.perf_counter() - start
    return hook

pytest_runtest_setup = _timed("setup")
pytest_runtest_call = _timed("call")
pytest_runtest_teardown = _timed("teardown")

def pytest_sessionfinish(session):
    with open(os.environ["FIXTURE_BENCH_OUT"], "w") as out:
        json.dump(TIMES, out)
"""

VARIANTS = {
    "none": "def test_bench(i):\n    pass\n",
    "aep_emulator": "def test_bench(i, aep_emulator):\n    pass\n",
    "aep_emulator + headers()": "def test_bench(i, aep_emulator):\n    aep_emulator.headers()\n",
    "aep_emulator_app": "def test_bench(i, aep_emulator_app):\n    pass\n",
}


def run(folder: Path, body: str, tests: int) -> tuple[list[dict[str, Any]], float]:
    (folder / "test_bench.py").write_text(
        f"import pytest\n\n@pytest.mark.parametrize('i', range({tests}))\n{body}"
    )
    out = folder / "times.json"
    env = {**os.environ, "FIXTURE_BENCH_OUT": str(out), "PYTHONPATH": str(folder)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "bench_timer",
        "-p",
        "no:cacheprovider",
        "-c",
        str(folder / "pytest.ini"),
        str(folder / "test_bench.py"),
    ]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"pytest failed:\n{result.stdout}\n{result.stderr}")
    times: list[dict[str, Any]] = json.loads(out.read_text())
    return times, wall


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"mean {statistics.mean(values) * 1000:6.2f}  median {statistics.median(values) * 1000:6.2f}  "
        f"p95 {p95 * 1000:6.2f}  max {max(values) * 1000:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=500, help="tests per variant (default 500)")
    parser.add_argument("--quick", action="store_true", help="100 tests per variant")
    args = parser.parse_args()
    if args.quick:
        args.tests = 100
    summary: dict[str, Any] = {"tests_per_variant": args.tests, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bench_timer.py").write_text(TIMER_PLUGIN)
        (folder / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        walls: dict[str, float] = {}
        print(f"{args.tests} tests per variant, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        for name, body in VARIANTS.items():
            times, walls[name] = run(folder, body, args.tests)
            first, rest = times[0], times[1:]
            setup_teardown = [t["setup"] + t["teardown"] for t in rest]
            print(f"\n{name}: wall {walls[name]:.2f} s")
            if name == "none":
                continue
            summary["variants"][name] = {
                "first_setup_ms": round(first["setup"] * 1000, 2),
                "mean_ms": round(statistics.mean(setup_teardown) * 1000, 3),
                "median_ms": round(statistics.median(setup_teardown) * 1000, 3),
                "wall_overhead_ms": round((walls[name] - walls["none"]) / args.tests * 1000, 3),
            }
            print(f"  first test (setup incl. session start): {first['setup'] * 1000:.1f} ms")
            print(f"  setup+teardown per test:  {ms(setup_teardown)}")
            if "headers" in name:
                print(f"  call (first headers() = token mint): {ms([t['call'] for t in rest])}")
            overhead = (walls[name] - walls["none"]) / args.tests
            print(f"  wall-clock overhead per test vs. no fixture: {overhead * 1000:.2f} ms")
    fixtures = [summary["variants"][name]["mean_ms"] for name in ("aep_emulator", "aep_emulator_app")]
    summary["fixture_ms"] = max(fixtures)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
