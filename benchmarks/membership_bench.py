"""Segment membership from PQL, on one core: how fast a definition is evaluated over a population.

Evaluates, block by block as a segment job or an export does (emulator/exportdata/audience.py: statuses,
identity namespaces and counts per block), an attribute predicate and an event-count predicate over a
population of 1,000,000 profiles, Arrow limited to one CPU thread; reports profiles per second. Memory:
the peak resident size of a child process that evaluates 10,000 profiles against one that evaluates
1,000,000; evaluation streams block by block, so the two should differ by no more than exports do.

    python -m benchmarks.membership_bench [--profiles 1000000] [--rounds 3] [--quick]

The last stdout line is one JSON object; `attribute_profiles_per_second` and `event_count_profiles_per_second`
are the headlines (goal: >= 200,000 each), `delta_mb` the memory difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import pyarrow as pa

from emulator.exportdata.audience import count_segments
from emulator.exportdata.pools import pools
from emulator.exportdata.population import Population, Segment
from emulator.pql import compile_expression

SEED = 0
PREDICATES = {
    "attribute": 'homeAddress.city = "Berlin" or homeAddress.countryCode in ["FR", "GB"]',
    "event_count": 'xEvent[eventType = "commerce.purchases"].count() >= 2',
}
GOAL = 200_000


def evaluate(count: int, text: str) -> tuple[int, float]:
    """(members, seconds) of one definition over a population of `count` profiles."""
    predicate = compile_expression(text).predicate
    assert predicate is not None, text
    population = Population(SEED, "BENCH@AdobeOrg/prod", count, 0, (0, 5))
    segment = Segment("ups", "bench")
    started = time.perf_counter()
    counts = count_segments(population, [segment], ((segment, predicate),))
    return counts.segments["bench"].members, time.perf_counter() - started


def measure(count: int, text: str, rounds: int) -> dict[str, Any]:
    runs = [evaluate(count, text) for _ in range(rounds)]
    members = runs[0][0]
    best = min(seconds for _, seconds in runs)
    return {
        "profiles": count,
        "members": members,
        "profiles_per_second": round(count / best),
        "seconds_best": round(best, 3),
        "seconds_median": round(statistics.median(seconds for _, seconds in runs), 3),
    }


def peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    return int(fields["VmHWM"].split()[0]) / 1024


def child_rss(count: int) -> float:
    """Peak resident MB of a fresh process that evaluates both predicates over `count` profiles."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.membership_bench", "--rss-child", str(count)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout.splitlines()[-1])["peak_rss_mb"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if args.rss_child is not None:
        pools(SEED)
        for text in PREDICATES.values():
            evaluate(args.rss_child, text)
        print(json.dumps({"peak_rss_mb": round(peak_rss_mb(), 1)}))
        return 0
    rounds = 1 if args.quick else args.rounds
    pools(SEED)  # Faker's value pools, made once per seed (not part of evaluation)
    compile_expression("a = 1")  # the grammar, built once per process
    result: dict[str, Any] = {}
    for name, text in PREDICATES.items():
        figures = measure(args.profiles, text, rounds)
        result[f"{name}_profiles_per_second"] = figures["profiles_per_second"]
        result[name] = {"pql": text, **figures}
        print(
            f"{name:12} {figures['profiles']:>9,} profiles  {figures['members']:>8,} members  "
            f"{figures['profiles_per_second']:>9,} /s",
            file=sys.stderr,
        )
    small, large = child_rss(10_000), child_rss(args.profiles)
    result.update(
        rss_mb_10k=small,
        rss_mb_1m=large,
        delta_mb=round(large - small, 1),
        goal_profiles_per_second=GOAL,
        arrow_cpu_threads=pa.cpu_count(),
    )
    print(f"peak RSS {small} MB (10,000) vs {large} MB ({args.profiles:,})", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
