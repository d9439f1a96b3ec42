"""Profile generation into Parquet, on one core: the emulator's export path against per-row Faker.

Renders the files of an export exactly as a download does (select the rows, generate the profiles
column-wise, write Parquet with snappy), file after file, and reports profiles per second. Arrow is limited
to one CPU thread so the figure is one core's. The Faker value pools are built before timing (once per
seed; their cost is reported separately). For reference, the same fields made row by row with Faker.

    python -m benchmarks.profiles_bench [--profiles 300000] [--rounds 3] [--quick]

The last stdout line is one JSON object; `profiles_per_second` is the headline (default request: all
profile fields, no filter, no events, files of 10,000 rows).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from typing import Any

import faker
import pyarrow as pa

from emulator.exportdata.pools import pools
from emulator.exportdata.population import EXISTING, REALIZED, EventWindow, Population, Segment
from emulator.exportdata.render import render
from emulator.exportdata.selection import file_count, make_plan
from emulator.exportdata.spec import JSON_LINES, PARQUET, BatchSpec, SegmentFilter, Selection

SEED = 0
ROWS_PER_FILE = 10_000  # the scenarios' default maxRecordsPerFile


def render_all(spec: BatchSpec) -> tuple[int, int, float]:
    """(profiles, bytes, seconds) to count and render every file of the batch."""
    started = time.perf_counter()
    plan = make_plan(spec.population, spec.selection)
    written = 0
    for index in range(file_count(spec, plan)):
        written += len(render(spec, plan, index))
    return plan.total, written, time.perf_counter() - started


def measure(spec: BatchSpec, rounds: int) -> dict[str, Any]:
    runs = [render_all(spec) for _ in range(rounds)]
    best = min(runs, key=lambda run: run[2])
    rows, size, seconds = best
    return {
        "profiles": rows,
        "profiles_per_second": round(rows / seconds),
        "seconds_best": round(seconds, 3),
        "seconds_median": round(statistics.median(r[2] for r in runs), 3),
        "bytes_per_profile": round(size / max(rows, 1), 1),
    }


def faker_per_row(count: int) -> float:
    """The same profile fields made the obvious way: one Faker call per value."""
    fake = faker.Faker("en_US")
    fake.seed_instance(SEED)
    started = time.perf_counter()
    rows = [
        {
            "identityMap": {
                "ECID": [{"id": fake.numerify("#" * 38), "primary": False}],
                "email": [{"id": fake.email(), "primary": True}],
                "phone": [{"id": fake.phone_number(), "primary": False}],
            },
            "person": {
                "name": {"firstName": fake.first_name(), "lastName": fake.last_name()},
                "birthDate": fake.date_of_birth(),
            },
            "personalEmail": {"address": fake.email()},
            "mobilePhone": {"number": fake.phone_number()},
            "homeAddress": {
                "street1": fake.street_address(),
                "city": fake.city(),
                "postalCode": fake.postcode(),
                "country": fake.country(),
                "countryCode": fake.country_code(),
            },
            "_repo": {"modifyDate": fake.date_time_this_year()},
        }
        for _ in range(count)
    ]
    assert len(rows) == count
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=300_000, help="population size (default 300,000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per variant, the best counts (default 3)")
    parser.add_argument("--quick", action="store_true", help="100,000 profiles, one round")
    args = parser.parse_args(argv)
    count, rounds = (100_000, 1) if args.quick else (args.profiles, args.rounds)

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    started = time.perf_counter()
    pools(SEED)
    pools_seconds = time.perf_counter() - started

    population = Population(SEED, "BENCH@AdobeOrg/prod", count, 0, (0, 5))
    base = BatchSpec(
        population=population,
        selection=Selection(shown=population.base_segments()),
        projection=None,
        events=None,
        event_projection=None,
        format=PARQUET,
        max_records_per_file=ROWS_PER_FILE,
    )
    segment = Segment("ups", "bench-segment")
    variants = {
        "with_events": replace(base, events=EventWindow()),
        "segment_filter": replace(
            base,
            selection=Selection(
                segments=(SegmentFilter(segment, frozenset({REALIZED, EXISTING})),),
                shown=(*population.base_segments(), segment),
            ),
        ),
        "projected": replace(base, projection=("person.name", "personalEmail.address")),
        "json_lines": replace(base, format=JSON_LINES, population=replace(population, count=count // 10)),
    }
    headline = measure(base, rounds)
    result: dict[str, Any] = {
        "profiles_per_second": headline["profiles_per_second"],
        "default": headline,
        **{name: measure(spec, rounds) for name, spec in variants.items()},
        "faker_per_row_profiles_per_second": round(faker_per_row(2_000)),
        "pools_seconds": round(pools_seconds, 3),
        "arrow_cpu_threads": pa.cpu_count(),
        "rows_per_file": ROWS_PER_FILE,
    }
    for name in ("default", *variants):
        figures = result[name]
        print(
            f"{name:15} {figures['profiles']:>9,} profiles  {figures['profiles_per_second']:>9,} /s  "
            f"{figures['bytes_per_profile']:>6} B/profile",
            file=sys.stderr,
        )
    print(f"{'faker per row':15} {result['faker_per_row_profiles_per_second']:>29,} /s", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
