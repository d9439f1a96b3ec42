"""What a POST create costs below its handler, in process and without HTTP.

Builds a Backend as `aep-emulator serve --clock manual` does (the same options, the same GC policy: the
startup heap frozen, `GC_YOUNG_THRESHOLD`), creates a dataset in the benchmark's `post` sandbox and times
creates of the HTTP benchmark's own body (`benchmarks.servers.job_request`, with the tenant's default merge
policy) through the calls `emulator/api/export_jobs.py:create_job` makes: JSON parse (with `read_json`'s
depth pre-count), schema check, `jobs.create`, the fault and the counters (coroutines that do not suspend
for this job, run to completion here), `job_json` and the encoding. The gateway, the journal, the body read
and the response object are the HTTP side's and are not here.

Modes (each prints a table, then one JSON object on its last stdout line):

- default: `--rounds` rounds of `--creates` creates each, CPU time of the process per create (min and
  median of the rounds), then the same split per step (each step's min and median of the rounds);
- `--profile`: cProfile over `--creates` creates, the functions with the most own time;
- `--stream N`: N creates into a fresh backend (100,000 jobs: the per-tenant cap), timing every
  collection of the cyclic GC through `gc.callbacks`: its share of the CPU time, by generation.

Usage: python -m benchmarks.create_bench [--rounds 15] [--creates 2000] [--profile] [--stream 100000]
Pin it to one CPU on a shared machine (`taskset -c 0 python -m benchmarks.create_bench`).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from benchmarks.servers import ORG, PROFILE_UNION, job_request
from emulator.backend import Backend
from emulator.cli import GC_YOUNG_THRESHOLD, build_parser, options_from
from emulator.job_view import job_json
from emulator.jsonio import dumps
from emulator.store import Tenant

SCHEMA = "export-job.create.request"
CLIENT_ID = "bench-client"
MAX_JSON_DEPTH = 64  # read_json's pre-count (the walk never runs for this body)
STEPS = ("parse", "validate", "create", "fault+counters", "job_json", "encode")


def _done(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that does not suspend (no fault, nothing to count) to its end."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise RuntimeError("the coroutine suspended: this create is not the benchmark's")


class Bench:
    """A backend as `serve --clock manual` builds it, with the benchmark's dataset and request body."""

    def __init__(self) -> None:
        options = options_from(build_parser().parse_args(["serve", "--clock", "manual"]))
        self.backend = Backend(options)
        self.tenant = Tenant(ORG, "post")
        dataset = self.backend.catalog.create_dataset(
            self.tenant,
            {
                "name": "benchmark target (post)",
                "schemaRef": {"id": PROFILE_UNION, "contentType": "application/vnd.adobe.xed+json;version=1"},
                "fileDescription": {"format": "parquet"},
            },
            CLIENT_ID,
        )
        policy = self.backend.merge_policies.default_id(self.tenant)
        self.raw = json.dumps(job_request(dataset.id, policy)).encode()  # as the wrk script sends it
        gc.freeze()  # as `serve` does once started
        gc.set_threshold(GC_YOUNG_THRESHOLD)

    def create(self) -> bytes:
        """One create, as the handler makes it."""
        backend, raw = self.backend, self.raw
        body = orjson.loads(raw)
        if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
            raise RuntimeError("the benchmark's body is not this deep")
        body = backend.schemas.check(SCHEMA, body)
        created = backend.jobs.create(
            self.tenant,
            body,
            requested_scenario=None,
            request_id=None,
            profile_instance_id=None,
            client_id=CLIENT_ID,
        )
        _done(backend.faults.apply(created.fault))
        job = created.job
        assert job is not None
        _done(backend.prepare_counters((job,)))
        return dumps(job_json(job, backend.job_counters(job)))

    def create_in_steps(self, spent: list[int]) -> None:
        """`create`, adding each step's nanoseconds to `spent` (in STEPS order)."""
        backend, raw, clock = self.backend, self.raw, time.perf_counter_ns
        t0 = clock()
        body = orjson.loads(raw)
        if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
            raise RuntimeError("the benchmark's body is not this deep")
        t1 = clock()
        body = backend.schemas.check(SCHEMA, body)
        t2 = clock()
        created = backend.jobs.create(
            self.tenant,
            body,
            requested_scenario=None,
            request_id=None,
            profile_instance_id=None,
            client_id=CLIENT_ID,
        )
        t3 = clock()
        _done(backend.faults.apply(created.fault))
        job = created.job
        assert job is not None
        _done(backend.prepare_counters((job,)))
        t4 = clock()
        document = job_json(job, backend.job_counters(job))
        t5 = clock()
        dumps(document)
        t6 = clock()
        for index, (start, end) in enumerate(((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6))):
            spent[index] += end - start


def _us(nanoseconds: float, count: int) -> float:
    return nanoseconds / count / 1000


def rounds(rounds: int, creates: int) -> dict[str, Any]:
    bench = Bench()
    for _ in range(creates):  # warm-up: first-use work (the pre-check's compilation) is not per create
        bench.create()
    totals: list[float] = []
    steps: list[list[float]] = [[] for _ in STEPS]
    create = bench.create
    for _ in range(rounds):
        started = time.process_time_ns()
        for _ in range(creates):
            create()
        totals.append(_us(time.process_time_ns() - started, creates))
        spent = [0] * len(STEPS)
        for _ in range(creates):
            bench.create_in_steps(spent)
        for index, ns in enumerate(spent):
            steps[index].append(_us(ns, creates))
    result: dict[str, Any] = {
        "us_per_create_min": round(min(totals), 2),
        "us_per_create_median": round(statistics.median(totals), 2),
        "steps_us": {
            name: [round(min(values), 2), round(statistics.median(values), 2)]
            for name, values in zip(STEPS, steps, strict=True)
        },
        "jobs": bench.backend.store.last_job_id,
    }
    print(f"us of CPU per create ({rounds} rounds of {creates}): min {result['us_per_create_min']}, "
          f"median {result['us_per_create_median']}")  # fmt: skip
    print(f"{'step':<16}{'min':>8}{'median':>8}")
    for name, (low, mid) in result["steps_us"].items():
        print(f"{name:<16}{low:>8.2f}{mid:>8.2f}")
    return result


def profile(creates: int) -> dict[str, Any]:
    bench = Bench()
    for _ in range(1000):
        bench.create()
    profiler = cProfile.Profile()
    profiler.runcall(_repeat, bench.create, creates)
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(30)
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:30]  # type: ignore[attr-defined]
    return {
        "profile_us_per_create": {
            f"{path.rsplit('/', 1)[-1]}:{line}:{name}": round(_us(own * 1e9, creates), 2)
            for (path, line, name), (_, _, own, _, _) in rows
        }
    }


def _repeat(function: Callable[[], object], times: int) -> None:
    for _ in range(times):
        function()


def stream(count: int) -> dict[str, Any]:
    """`count` creates into a fresh backend, with every GC collection timed."""
    bench = Bench()
    spent = {0: 0, 1: 0, 2: 0}
    collections = {0: 0, 1: 0, 2: 0}
    started_at = [0]

    def timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started_at[0] = time.perf_counter_ns()
        else:
            spent[info["generation"]] += time.perf_counter_ns() - started_at[0]
            collections[info["generation"]] += 1

    gc.callbacks.append(timer)
    try:
        started, cpu = time.perf_counter_ns(), time.process_time_ns()
        _repeat(bench.create, count)
        wall, cpu = time.perf_counter_ns() - started, time.process_time_ns() - cpu
    finally:
        gc.callbacks.remove(timer)
    gc_ns = sum(spent.values())
    result: dict[str, Any] = {
        "stream_jobs": count,
        "stream_us_per_create": round(_us(cpu, count), 2),
        "gc_seconds": round(gc_ns / 1e9, 3),
        "gc_share": round(gc_ns / wall, 4),
        "gc_us_per_create": round(_us(gc_ns, count), 2),
        "gc_by_generation": {
            str(g): {"collections": collections[g], "seconds": round(spent[g] / 1e9, 3)} for g in spent
        },
    }
    print(f"{count} creates: {result['stream_us_per_create']} us of CPU each; the GC took "
          f"{result['gc_seconds']} s ({result['gc_share']:.1%} of the time, {result['gc_us_per_create']} us "
          "a create)")  # fmt: skip
    for generation, value in result["gc_by_generation"].items():
        print(f"  generation {generation}: {value['collections']} collections, {value['seconds']} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--creates", type=int, default=2000, help="creates per round (or profiled)")
    parser.add_argument("--profile", action="store_true", help="cProfile the creates instead")
    parser.add_argument("--stream", type=int, metavar="N", help="time the GC over N creates instead")
    args = parser.parse_args()
    if args.stream:
        result = stream(args.stream)
    elif args.profile:
        result = profile(args.creates)
    else:
        result = rounds(args.rounds, args.creates)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
