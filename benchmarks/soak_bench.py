"""Soak: 100,000 requests of mixed kinds against `aep-emulator serve`, sampling its resident memory.

One server (loopback, port 0, manual clock) with the documented defaults except a per-tenant job cap the
run reaches (`--max-jobs-per-tenant 500` over 8 tenants: jobs are evicted from then on, as they would be
after 100,000 jobs per tenant in a longer run). Concurrent clients then send, by weight: job polls, job
creates, list pages (first and next), cancels and deletes, Catalog batch and dataset reads, Data Access
batch files, file listings and downloads, IMS tokens, control-plane reads, and bad requests (404, 400, 405,
413). The server's VmRSS (from /proc) is sampled every `--every` requests.

    python -m benchmarks.soak_bench [--requests 100000] [--clients 8] [--every 2000] [--quick]

Progress goes to stderr; the last stdout line is one JSON object: requests, seconds, statuses, the RSS
curve (MB) and `rss_mb_start`, `rss_mb_at_half`, `rss_mb_end`, `rss_mb_peak` and `growth_mb_second_half`
(end minus half-way: by then the journal is full and every tenant is at its job cap, so what still grows
is what has no cap, such as datasets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

READY = "aep-emulator listening on "
JOBS = "/data/core/ups/export/jobs"
DATASETS = "/data/foundation/catalog/dataSets"
BATCHES = "/data/foundation/catalog/batches"
EXPORT = "/data/foundation/export"
TENANTS = [(f"SOAK{n}@AdobeOrg", "prod" if n % 2 else "dev") for n in range(8)]
JOB_CAP = 500
# A small population: files render in milliseconds, and a batch has a few of them.
SCENARIO = """\
name: soak
description: small exports for the soak benchmark
steps:
  - status: NEW
  - status: PROCESSING
    after: {polls: 1, seconds: 5}
  - status: SUCCEEDED
    after: {polls: 1, seconds: 5}
profiles: {count: 300, emptyProfiles: 10}
files: {maxRecordsPerFile: 100}
"""
WEIGHTS = {
    "poll": 30,
    "create": 12,
    "list": 8,
    "list_next": 4,
    "cancel": 5,
    "batches": 4,
    "batch": 3,
    "batch_files": 5,
    "file_listing": 3,
    "download": 3,
    "dataset": 3,
    "create_dataset": 1,
    "token": 2,
    "health": 2,
    "journal": 1,
    "clock": 1,
    "not_found": 3,
    "bad_body": 3,
    "not_allowed": 2,
    "too_large": 0.2,
}


@dataclass
class Tenant:
    org: str
    sandbox: str
    datasets: list[str] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)  # newest last; some may be gone (evicted, deleted)
    batches: list[str] = field(default_factory=list)
    files: list[tuple[str, str | None]] = field(default_factory=list)  # (dataSetFileId, name when known)
    next_link: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Authorization": "Bearer soak",
            "x-api-key": "soak",
            "x-gw-ims-org-id": self.org,
            "x-sandbox-name": self.sandbox,
            "Content-Type": "application/json",
        }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Soak:
    def __init__(self, url: str, session: aiohttp.ClientSession, seed: int):
        self.url = url
        self.session = session
        self.rng = random.Random(seed)
        self.tenants = [Tenant(org, sandbox) for org, sandbox in TENANTS]
        self.statuses: Counter[int] = Counter()
        self.kinds: Counter[str] = Counter()
        self.sent = 0
        self.big = b'{"name": "' + b"a" * (1024 * 1024) + b'"}'

    async def call(
        self,
        method: str,
        path: str,
        tenant: Tenant | None,
        extra: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        headers = {**(tenant.headers if tenant else {}), **(extra or {})}
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as response:
            data = await response.read()
            self.statuses[response.status] += 1
            self.sent += 1
            if response.content_type == "application/json" and data:
                return response.status, json.loads(data)
            return response.status, data

    async def setup(self) -> None:
        await self.call("POST", "/_emulator/scenarios", None, data=SCENARIO.encode())
        await self.call("PUT", "/_emulator/scenarios/default", None, json={"name": "soak"})
        for tenant in self.tenants:
            await self.create_dataset(tenant)

    async def create_dataset(self, tenant: Tenant) -> None:
        status, created = await self.call(
            "POST", DATASETS, tenant, json={"name": f"soak {len(tenant.datasets)}"}
        )
        if status == 201:
            tenant.datasets.append(created[0].rsplit("/", 1)[1])

    async def one(self) -> None:
        kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        self.kinds[kind] += 1
        tenant = self.rng.choice(self.tenants)
        await getattr(self, f"do_{kind}")(tenant)

    def recent_job(self, tenant: Tenant) -> int | None:
        return self.rng.choice(tenant.jobs[-50:]) if tenant.jobs else None

    async def do_poll(self, tenant: Tenant) -> None:
        job_id = self.recent_job(tenant)
        if job_id is None:
            return await self.do_create(tenant)
        status, job = await self.call("GET", f"{JOBS}/{job_id}", tenant)
        if status == 200 and job["status"] == "SUCCEEDED":
            batch = job["destination"].get("batchId")
            if batch and batch not in tenant.batches[-50:]:
                tenant.batches.append(batch)

    async def do_create(self, tenant: Tenant) -> None:
        body: dict[str, Any] = {
            "destination": {"datasetId": self.rng.choice(tenant.datasets)},
            "schema": {"name": "_xdm.context.profile"},
        }
        if self.rng.random() < 0.2:
            body["filter"] = {"segments": [{"segmentId": f"seg-{self.rng.randrange(3)}"}]}
        headers = {"x-emulator-scenario": "stuck"} if self.rng.random() < 0.1 else {}
        status, job = await self.call("POST", JOBS, tenant, headers, json=body)
        if status == 200:
            tenant.jobs.append(job["id"])
            del tenant.jobs[:-2000]

    async def do_list(self, tenant: Tenant) -> None:
        status, page = await self.call("GET", f"{JOBS}?limit=20", tenant)
        if status == 200:
            tenant.next_link = page["link"]["next"]

    async def do_list_next(self, tenant: Tenant) -> None:
        if not tenant.next_link:
            return await self.do_list(tenant)
        status, page = await self.call("GET", f"/data/core/ups{tenant.next_link}", tenant)
        tenant.next_link = page["link"]["next"] if status == 200 else ""

    async def do_cancel(self, tenant: Tenant) -> None:
        job_id = self.recent_job(tenant)
        if job_id is not None:
            await self.call("DELETE", f"{JOBS}/{job_id}", tenant)

    async def do_batches(self, tenant: Tenant) -> None:
        await self.call("GET", f"{BATCHES}?limit=10&orderBy=desc:created", tenant)

    async def do_batch(self, tenant: Tenant) -> None:
        if tenant.batches:
            await self.call("GET", f"{BATCHES}/{self.rng.choice(tenant.batches[-50:])}", tenant)

    async def do_batch_files(self, tenant: Tenant) -> None:
        if not tenant.batches:
            return await self.do_poll(tenant)
        status, files = await self.call(
            "GET", f"{EXPORT}/batches/{self.rng.choice(tenant.batches[-50:])}/files", tenant
        )
        if status == 200:
            tenant.files += [(f["dataSetFileId"], None) for f in files["data"]]
            del tenant.files[:-100]

    async def do_file_listing(self, tenant: Tenant) -> None:
        if not tenant.files:
            return await self.do_batch_files(tenant)
        index = self.rng.randrange(len(tenant.files))
        file_id, _ = tenant.files[index]
        status, listing = await self.call("GET", f"{EXPORT}/files/{file_id}", tenant)
        if status == 200:
            tenant.files[index] = (file_id, listing["data"][0]["name"])

    async def do_download(self, tenant: Tenant) -> None:
        named = [(f, n) for f, n in tenant.files if n]
        if not named:
            return await self.do_file_listing(tenant)
        file_id, name = self.rng.choice(named)
        await self.call("GET", f"{EXPORT}/files/{file_id}", tenant, params={"path": name})

    async def do_dataset(self, tenant: Tenant) -> None:
        await self.call("GET", f"{DATASETS}/{self.rng.choice(tenant.datasets)}", tenant)

    async def do_create_dataset(self, tenant: Tenant) -> None:
        await self.create_dataset(tenant)

    async def do_token(self, tenant: Tenant) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": "soak",
            "client_secret": "s",
            "scope": "openid",
        }
        await self.call("POST", "/ims/token/v3", None, data=form)

    async def do_health(self, tenant: Tenant) -> None:
        await self.call("GET", "/_emulator/health", None)

    async def do_journal(self, tenant: Tenant) -> None:
        # Filtered: the whole journal (10,000 entries) would make this a download benchmark.
        await self.call("GET", f"/_emulator/requests?path={JOBS}/1&org={tenant.org}", None)

    async def do_clock(self, tenant: Tenant) -> None:
        # Jobs nobody polls finish too, as time passes: the job cap then evicts them.
        await self.call("POST", "/_emulator/clock/advance", None, json={"seconds": 10})

    async def do_not_found(self, tenant: Tenant) -> None:
        await self.call("GET", f"{JOBS}/{10**12 + self.rng.randrange(1000)}", tenant)

    async def do_bad_body(self, tenant: Tenant) -> None:
        body = self.rng.choice([b"{", b"[]", b'{"destination": 5}', b'{"schema": {"name": ""}}'])
        await self.call("POST", JOBS, tenant, data=body)

    async def do_not_allowed(self, tenant: Tenant) -> None:
        await self.call("PUT", f"{JOBS}/1", tenant, data=b"{}")

    async def do_too_large(self, tenant: Tenant) -> None:
        await self.call("POST", DATASETS, tenant, data=self.big)


async def run(url: str, pid: int, total: int, clients: int, every: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        soak = Soak(url, session, seed=8)
        await soak.setup()
        curve: list[tuple[int, float]] = [(soak.sent, round(rss_mb(pid), 1))]
        next_sample = every
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal next_sample
            while soak.sent < total:
                await soak.one()
                if soak.sent >= next_sample:
                    next_sample += every
                    curve.append((soak.sent, round(rss_mb(pid), 1)))
                    print(f"{soak.sent:>7} requests  rss {curve[-1][1]:6.1f} MB", file=sys.stderr, flush=True)

        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - started
    curve.append((soak.sent, round(rss_mb(pid), 1)))
    half = next(mb for sent, mb in curve if sent >= total * 0.5)
    return {
        "requests": soak.sent,
        "seconds": round(seconds, 1),
        "requests_per_second": round(soak.sent / seconds),
        "clients": clients,
        "statuses": {str(k): v for k, v in sorted(soak.statuses.items())},
        "errors_5xx": sum(v for k, v in soak.statuses.items() if k >= 500),
        "kinds": dict(soak.kinds.most_common()),
        "rss_mb_curve": curve,
        "rss_mb_start": curve[0][1],
        "rss_mb_at_half": half,
        "rss_mb_end": curve[-1][1],
        "rss_mb_peak": max(mb for _, mb in curve),
        "growth_mb_second_half": round(curve[-1][1] - half, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--every", type=int, default=2000, help="sample RSS every N requests")
    parser.add_argument("--quick", action="store_true", help="10,000 requests")
    args = parser.parse_args()
    total = 10_000 if args.quick else args.requests
    every = min(args.every, max(total // 20, 1))
    argv = [
        sys.executable,
        "-m",
        "emulator",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--clock",
        "manual",
        "--max-jobs-per-tenant",
        str(JOB_CAP),
    ]
    # Bounded in time whatever happens: coreutils `timeout` ends the server after 15 minutes.
    process = subprocess.Popen(["timeout", "900", *argv], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith(READY):
            raise SystemExit(f"the emulator did not start: {line!r}")
        url = line.removeprefix(READY)
        server_pid = int(
            subprocess.run(
                ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        )
        result = asyncio.run(run(url, server_pid, total, args.clients, every))
        result["job_cap_per_tenant"] = JOB_CAP
        result["tenants"] = len(TENANTS)
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
