"""Resident memory of `aep-emulator serve` through a whole export: 10,000 profiles against 1,000,000.

For each size, a fresh server (manual clock) gets a scenario with that population, a dataset and an export
job, which is polled until SUCCEEDED (its counters stream over the population); then every file of the
batch is listed and downloaded (streamed, discarded). The figure is the server's peak resident set
(VmHWM from /proc) at the end: an export that never materialises stays flat whatever its size.

    python -m benchmarks.memory_bench [--sizes 10000 1000000] [--events] [--quick]

The last stdout line is one JSON object: `rss_mb_10k`, `rss_mb_1m` (peak MB) and `delta_mb`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

READY = "aep-emulator listening on http://"
ROWS_PER_FILE = 10_000
SCHEMA_REF = {
    "id": "https://ns.adobe.com/xdm/context/profile__union",
    "contentType": "application/vnd.adobe.xed+json;version=1",
}
HEADERS = {
    "Authorization": "Bearer bench",
    "x-api-key": "bench",
    "x-gw-ims-org-id": "BENCH@AdobeOrg",
    "x-sandbox-name": "prod",
    "Content-Type": "application/json",
}


class Server:
    """`python -m emulator serve` on a free port, stopped on exit."""

    def __init__(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "emulator",
            "serve",
            "--port",
            "0",
            "--clock",
            "manual",
            "--log-level",
            "WARNING",
        ]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith(READY):
            self.stop()
            raise SystemExit(f"the emulator did not start: {line!r}")
        address = urlsplit(line.removeprefix("aep-emulator listening on "))
        self.connection = http.client.HTTPConnection(
            address.hostname or "127.0.0.1", address.port, timeout=120
        )

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        payload = None if body is None else json.dumps(body)
        self.connection.request(method, path, body=payload, headers={**HEADERS, **(headers or {})})
        response = self.connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise SystemExit(f"{method} {path}: HTTP {response.status} {data[:300]!r}")
        return json.loads(data)

    def download(self, path: str) -> int:
        """Streams the body and throws it away; returns its size."""
        self.connection.request("GET", path, headers=HEADERS)
        response = self.connection.getresponse()
        if response.status != 200:
            raise SystemExit(f"GET {path}: HTTP {response.status}")
        size = 0
        while chunk := response.read(1 << 16):
            size += len(chunk)
        return size

    def memory_mb(self) -> dict[str, float]:
        status = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        fields = {
            line.split(":")[0]: line.split()[1] for line in status if line.startswith(("VmRSS", "VmHWM"))
        }
        return {"rss_mb": int(fields["VmRSS"]) / 1024, "peak_mb": int(fields["VmHWM"]) / 1024}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def export(size: int, events: bool) -> dict[str, Any]:
    server = Server()
    try:
        idle = server.memory_mb()
        started = time.perf_counter()
        scenario = {
            "name": "bench",
            "steps": [
                {"status": "NEW"},
                {"status": "PROCESSING", "after": {"polls": 1}},
                {"status": "SUCCEEDED", "after": {"polls": 1}},
            ],
            "profiles": {"count": size, "emptyProfiles": 0, "eventsPerProfile": [0, 5]},
            "files": {"maxRecordsPerFile": ROWS_PER_FILE},
        }
        server.call("POST", "/_emulator/scenarios", scenario)
        created = server.call(
            "POST", "/data/foundation/catalog/dataSets", {"name": "bench", "schemaRef": SCHEMA_REF}
        )
        dataset_id = created[0].rsplit("/", 1)[1]
        request: dict[str, Any] = {
            "destination": {"datasetId": dataset_id},
            "schema": {"name": "_xdm.context.profile"},
        }
        if events:
            request["additionalFields"] = {"eventList": {}}
        job = server.call("POST", "/data/core/ups/export/jobs", request, {"x-emulator-scenario": "bench"})
        for _ in range(2):
            job = server.call("GET", f"/data/core/ups/export/jobs/{job['id']}")
        assert job["status"] == "SUCCEEDED", job["status"]
        counted = job["metrics"]["totalExportedProfileCounter"]
        batch_id = job["destination"]["batchId"]
        files: list[str] = []
        start = 0
        while True:
            query = urlencode({"start": start, "limit": 100})
            page = server.call("GET", f"/data/foundation/export/batches/{batch_id}/files?{query}")
            files += [f["dataSetFileId"] for f in page["data"]]
            if "next" not in page.get("_links", {}):
                break
            start += 100
        downloaded = 0
        for file_id in files:
            listing = server.call("GET", f"/data/foundation/export/files/{file_id}")
            name = listing["data"][0]["name"]
            downloaded += server.download(
                f"/data/foundation/export/files/{file_id}?{urlencode({'path': name})}"
            )
        seconds = time.perf_counter() - started
        memory = server.memory_mb()
    finally:
        server.stop()
    if counted != size:
        raise SystemExit(f"exported {counted} profiles, expected {size}")
    return {
        "profiles": size,
        "files": len(files),
        "bytes_downloaded": downloaded,
        "seconds": round(seconds, 1),
        "idle_rss_mb": round(idle["rss_mb"], 1),
        "peak_rss_mb": round(memory["peak_mb"], 1),
        "final_rss_mb": round(memory["rss_mb"], 1),
    }


def label(size: int) -> str:
    return f"{size // 1_000_000}m" if size % 1_000_000 == 0 else f"{size // 1000}k"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 1_000_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--events", action="store_true", help="also export additionalFields.eventList")
    parser.add_argument("--quick", action="store_true", help="10,000 against 200,000 profiles")
    args = parser.parse_args(argv)
    small, large = (10_000, 200_000) if args.quick else args.sizes
    runs = {size: export(size, args.events) for size in (small, large)}
    for size, run in runs.items():
        print(
            f"{size:>10,} profiles  {run['files']:>4} files  "
            f"{run['bytes_downloaded'] / 1e6:>8.1f} MB downloaded  "
            f"peak RSS {run['peak_rss_mb']:.1f} MB (idle {run['idle_rss_mb']:.1f})  {run['seconds']} s",
            file=sys.stderr,
        )
    result = {
        f"rss_mb_{label(small)}": runs[small]["peak_rss_mb"],
        f"rss_mb_{label(large)}": runs[large]["peak_rss_mb"],
        "delta_mb": round(runs[large]["peak_rss_mb"] - runs[small]["peak_rss_mb"], 1),
        "measure": "peak resident set (VmHWM) of the server after the whole export",
        "events": args.events,
        "runs": {label(size): run for size, run in runs.items()},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
