"""The health check's latency while a 1,000,000-profile file is rendered and downloaded.

A fresh `aep-emulator serve` (manual clock) gets a scenario of 1,000,000 profiles written as one file
(`maxRecordsPerFile: 1000000`, about 118 MB of Parquet), a dataset and an export job polled to SUCCEEDED.
Then, while one client lists the file (which renders it, the byte cache being smaller than the file) and
downloads it, another calls `GET /_emulator/health` every 5 ms on its own connection. The figure is the
p99 of those health checks (goal: under 100 ms); the SUCCEEDED poll (which counts the population) is
sampled the same way and reported for information.

    python -m benchmarks.health_bench [--profiles N] [--quick]

The last stdout line is one JSON object: `health_p99_ms`, `health_max_ms`, `samples`, ...
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlencode

from benchmarks.memory_bench import SCHEMA_REF, Server

INTERVAL_S = 0.005
PROFILES = 1_000_000


class HealthSampler:
    """Calls the health check every INTERVAL_S on its own connection until stopped; keeps the latencies."""

    def __init__(self, server: Server) -> None:
        self.connection = http.client.HTTPConnection(
            server.connection.host, server.connection.port, timeout=300
        )
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=300)
        self.connection.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            self.connection.request("GET", "/_emulator/health")
            response = self.connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"health: HTTP {response.status}")
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            self._stop.wait(INTERVAL_S)


def summary(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    if not ordered:
        return {"samples": 0}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"samples": len(ordered), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": round(ordered[-1], 2)}


def run(profiles: int) -> dict[str, Any]:
    server = Server()
    try:
        scenario = {
            "name": "bench",
            "steps": [
                {"status": "NEW"},
                {"status": "PROCESSING", "after": {"polls": 1}},
                {"status": "SUCCEEDED", "after": {"polls": 1}},
            ],
            "profiles": {"count": profiles, "emptyProfiles": 0, "eventsPerProfile": [0, 5]},
            "files": {"maxRecordsPerFile": profiles},
        }
        server.call("POST", "/_emulator/scenarios", scenario)
        created = server.call(
            "POST", "/data/foundation/catalog/dataSets", {"name": "bench", "schemaRef": SCHEMA_REF}
        )
        request = {"destination": {"datasetId": created[0].rsplit("/", 1)[1]}, "schema": {"name": "_xdm"}}
        job = server.call("POST", "/data/core/ups/export/jobs", request, {"x-emulator-scenario": "bench"})
        job = server.call("GET", f"/data/core/ups/export/jobs/{job['id']}")  # PROCESSING
        with HealthSampler(server) as during_poll:
            job = server.call("GET", f"/data/core/ups/export/jobs/{job['id']}")
        assert job["status"] == "SUCCEEDED", job["status"]
        batch_id = job["destination"]["batchId"]
        started = time.perf_counter()
        with HealthSampler(server) as during_download:
            page = server.call("GET", f"/data/foundation/export/batches/{batch_id}/files")
            file_id = page["data"][0]["dataSetFileId"]
            listing = server.call("GET", f"/data/foundation/export/files/{file_id}")
            name = listing["data"][0]["name"]
            size = server.download(f"/data/foundation/export/files/{file_id}?{urlencode({'path': name})}")
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    download = summary(during_download.latencies_ms)
    return {
        "health_p99_ms": download.get("p99_ms"),
        "health_p50_ms": download.get("p50_ms"),
        "health_max_ms": download.get("max_ms"),
        "samples": download["samples"],
        "profiles": profiles,
        "file_bytes": size,
        "render_and_download_s": round(seconds, 1),
        "during_succeeded_poll": summary(during_poll.latencies_ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=PROFILES)
    parser.add_argument("--quick", action="store_true", help="200,000 profiles")
    args = parser.parse_args(argv)
    result = run(200_000 if args.quick else args.profiles)
    print(
        f"{result['profiles']:,} profiles, {result['file_bytes'] / 1e6:.1f} MB in "
        f"{result['render_and_download_s']} s: health p50 {result['health_p50_ms']} ms, "
        f"p99 {result['health_p99_ms']} ms, max {result['health_max_ms']} ms ({result['samples']} samples)",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
