"""The cost of a `--state-file` save and load with a large state, in process (no server, no HTTP).

One tenant gets a dataset and N export jobs (one batch each) through the domain services; the garbage
collector is then set as `aep-emulator serve` sets it. Measured, best of several runs:

- `prepare` (on the event loop: the state, the comparison with the last save, the encoding) when nothing
  changed since the last save, and when something did (the clock moved: every job is as it was);
- `write_atomic` (the worker thread's part);
- loading the file into a new backend (a start with `--state-file`).

    python -m benchmarks.save_bench [--jobs 100000] [--rounds 5]

The last stdout line is one JSON object with the figures in milliseconds and the file's size in MB.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.backend import Backend
from emulator.cli import GC_YOUNG_THRESHOLD
from emulator.options import Options
from emulator.persistence import Saver, write_atomic
from emulator.store import Tenant

START_MS = 1_700_000_000_000


def best_ms(rounds: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return round(min(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    def options(**more: Any) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, max_jobs_per_tenant=args.jobs + 1, **more)

    backend = Backend(options())
    tenant = Tenant("BENCH@AdobeOrg", "prod")
    dataset = backend.catalog.create_dataset(tenant, {"name": "bench"}, "bench-client")
    for _ in range(args.jobs):
        backend.jobs.create(
            tenant,
            {"destination": {"datasetId": dataset.id}, "schema": {"name": "_xdm.context.profile"}},
            requested_scenario=None,
            request_id=None,
            profile_instance_id=None,
            client_id="bench-client",
        )
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    path = Path(tempfile.mkdtemp()) / "state.json"
    saver = Saver(backend, path)
    started = time.perf_counter()
    first = saver.prepare()
    assert first is not None
    results: dict[str, Any] = {"first_prepare_ms": round((time.perf_counter() - started) * 1000, 1)}
    saver.written(first)
    results["unchanged_prepare_ms"] = best_ms(args.rounds, saver.prepare)

    def one_changed() -> None:
        backend.clock.advance(1)  # every job is as it was; the file must still be written again
        save = saver.prepare()
        assert save is not None
        saver.written(save)

    results["changed_prepare_ms"] = best_ms(args.rounds, one_changed)
    results["write_atomic_ms"] = best_ms(args.rounds, lambda: write_atomic(path, first.data))
    results["load_ms"] = best_ms(1, lambda: Backend(options(state_file=path)))
    results["file_mb"] = round(len(first.data) / 1e6, 1)
    for name, value in results.items():
        print(f"{name:>28}: {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
