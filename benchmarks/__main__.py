"""`python -m benchmarks`: the emulator side by side with a bare aiohttp app, in one run, as one table.

    python -m benchmarks [--quick] [--peers] [--duration S] [--rounds N] [--json PATH] [--check]

Measures over HTTP (see http_bench.py; with --peers WireMock and Prism too, see peers.py), then runs the
other benchmarks of this folder as subprocesses (subs.py), prints a table of ratios against the floor
with PASS/FAIL per target (report.py; benchmarks/README.md, "Targets"), and writes everything as JSON to
benchmarks/results/<UTC timestamp>.json (and to --json PATH when given).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import http_bench, peers
from benchmarks.machine import (
    NOISY_OTHER_CPUS,
    QUIET_BUSY_PERCENT,
    OtherLoad,
    ensure_wrk,
    machine,
    revision,
    tree_hash,
    versions,
    wait_until_quiet,
)
from benchmarks.report import http_rows, sub_rows, table
from benchmarks.servers import Config, log, pick_cpus
from benchmarks.subs import SUB_BENCHMARKS, run_sub

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
QUICK = Config(
    duration=1, rounds=1, warmup=0, latency_duration=1, cold_starts=2, large_jobs=5_000, peer_warmup=3
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~30 s smoke run (short, fewer jobs)")
    parser.add_argument("--duration", type=int, help="seconds of each measured wrk run (default 1)")
    parser.add_argument(
        "--rounds", type=int, help="interleaved measured runs per target, best one counts (default 5)"
    )
    parser.add_argument("--connections", type=int, help="wrk connections (default 16)")
    parser.add_argument("--jobs", type=int, help="jobs in the large list (default 100,000)")
    parser.add_argument("--cold-starts", type=int, help="cold starts of each server (default 5)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="first wait up to S seconds for the CPUs to be idle (other load skews the ratios)",
    )
    parser.add_argument("--no-sub", action="store_true", help="skip the profiles/memory/fixture benchmarks")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also measure WireMock and Prism under the same load (installed with npm on first use)",
    )
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="only the throughput rows: no cold starts, list latency or other benchmarks",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when any target fails")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    config = QUICK if args.quick else Config()
    overrides = {
        "duration": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "large_jobs": args.jobs,
        "cold_starts": args.cold_starts,
    }
    for name, value in overrides.items():
        if value is not None and value < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1")
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = config_from(args)
    wrk_version = ensure_wrk()
    busy = wait_until_quiet(args.wait_quiet)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    other_load = OtherLoad()
    cpus = pick_cpus()
    if cpus.load is not None:
        os.sched_setaffinity(0, {cpus.load})  # this process and wrk load from their own core
    else:
        log("fewer than 2 cores: servers and load share the CPU, ratios are less meaningful")

    measured_peers = peers.prepare() if args.peers else peers.Peers((), {})
    http = http_bench.run(config, cpus, measured_peers.ready, throughput_only=args.throughput_only)
    http["throughput"]["peers"] = measured_peers.to_json()
    skip = "skipped (--throughput-only)" if args.throughput_only else "skipped (--no-sub)"
    subs = {
        bench.module: (
            {"available": False, "reason": skip}
            if args.no_sub or args.throughput_only
            else run_sub(bench, cpus, args.quick)
        )
        for bench in SUB_BENCHMARKS
    }
    rows = http_rows(http) + ([] if args.throughput_only else sub_rows(subs))
    elapsed = round(time.perf_counter() - started, 1)
    others = other_load.cpus()

    meta = {
        "timestamp": stamp,
        "quick": args.quick,
        "seconds": elapsed,
        "revision": revision(),
        "tree": tree_hash(),
        "machine": machine(),
        "versions": {
            **versions(),
            "wrk": wrk_version,
            **{peer.name: peer.version for peer in measured_peers.ready},
        },
        "pinning": {"servers": cpus.server, "load": cpus.load},
        "busy_percent_before": busy,
        "other_processes_cpus": others,
        "loadavg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
    print(
        f"aep-emulator benchmark {stamp} rev {meta['revision']} tree {meta['tree']} "
        f"on {meta['machine']['cpu']} "
        f"({meta['machine']['cpus']} CPUs), Python {meta['machine']['python']}, aiohttp "
        f"{meta['versions']['aiohttp']}; servers on core {cpus.server}, wrk on core {cpus.load}; "
        f"wrk -t1 -c{config.connections}, best of {config.rounds} x {config.duration} s per target"
        f"{' (quick)' if args.quick else ''}"
    )
    if (busy is not None and busy > QUIET_BUSY_PERCENT) or (others is not None and others > NOISY_OTHER_CPUS):
        print(
            f"WARNING: other processes were busy (CPUs {busy}% busy before the run, load {load_before:.1f}; "
            f"{others} CPUs used by others during it): the numbers are skewed; rerun on a quiet machine "
            "(see --wait-quiet)"
        )
    else:
        print(f"machine quiet: {busy}% busy before the run, {others} CPUs used by other processes during it")
    print()
    print(table(rows))
    print()
    print(f"took {elapsed:.0f} s")

    document = {
        "meta": meta,
        "config": http["config"],
        "rows": [row.to_json() for row in rows],
        "http": http,
        "sub": subs,
    }
    text = json.dumps(document, indent=2) + "\n"
    RESULTS.mkdir(exist_ok=True)
    written = [RESULTS / f"{stamp}.json"]
    if args.json is not None:
        written.append(args.json)
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print("results: " + ", ".join(str(p) for p in written))
    failed = [row.metric for row in rows if row.result == "FAIL"]
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
