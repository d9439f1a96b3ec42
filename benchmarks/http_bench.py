"""The HTTP half of the benchmark: the floor and the emulator as separate processes, loaded by `wrk`.

Every server runs pinned to one core (the "server" core) and `wrk` runs pinned to another (the "load"
core), on 127.0.0.1 only. Each server is wrapped in coreutils `timeout`, so it dies on its own even if this
process is killed; `Server.stop` ends it (its whole process group) in a `finally`.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
ORG = "BENCHORG@AdobeOrg"
JOBS = "/data/core/ups/export/jobs"
DATASETS = "/data/foundation/catalog/dataSets"
MERGE_POLICIES = "/data/core/ups/config/mergePolicies"
HEALTH = "/_emulator/health"
PROFILE_UNION = "https://ns.adobe.com/xdm/context/profile__union"
EMULATOR_READY = "aep-emulator listening on http://"
FLOOR_READY = "floor listening on http://"
WRK_MARK = "WRK-RESULT "
# A server that outlives this is killed by `timeout` even if the harness died without cleaning up.
SERVER_LIFETIME_S = 900
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Config:
    duration: int = 1  # seconds of each measured wrk run
    rounds: int = 5  # measured runs per target, interleaved with the other targets' runs
    warmup: int = 1  # seconds of wrk load on each target before its first measured run, discarded
    connections: int = 16
    latency_duration: int = 1  # seconds of each single-connection latency run
    cold_starts: int = 5
    small_jobs: int = 100
    large_jobs: int = 100_000
    create_concurrency: int = 16


@dataclass(frozen=True)
class Cpus:
    """Which core the servers get and which the load generator gets (None: no pinning, one core only)."""

    server: int | None
    load: int | None

    def prefix(self, core: int | None) -> list[str]:
        return ["taskset", "-c", str(core)] if core is not None and shutil.which("taskset") else []


def pick_cpus() -> Cpus:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return Cpus(None, None)
    return Cpus(cores[0], cores[1])


def aep_headers(sandbox: str, *, body: bool = False) -> dict[str, str]:
    """What an AEP client such as aepp sends on every call."""
    headers = {
        "Authorization": "Bearer bench-token",
        "x-api-key": "bench-client",
        "x-gw-ims-org-id": ORG,
        "x-sandbox-name": sandbox,
        "Accept": "application/json",
    }
    if body:
        headers["Content-Type"] = "application/json"
    return headers


def job_request(dataset_id: str, merge_policy_id: str) -> dict[str, Any]:
    """A create-job body in the shape of Adobe's documented examples (segments, fields, merge policy); the
    merge policy must be one of the tenant's (see `default_merge_policy`)."""
    return {
        "fields": "identities.id,personalEmail.address",
        "mergePolicy": {"id": merge_policy_id, "version": 1},
        "filter": {
            "segments": [
                {
                    "segmentId": "52c26d0d-45f2-47a2-ab30-ed06abc981ff",
                    "segmentNs": "ups",
                    "status": ["realized", "existing"],
                }
            ],
            "emptyProfiles": False,
        },
        "destination": {"datasetId": dataset_id, "segmentPerBatch": False},
        "schema": {"name": "_xdm.context.profile"},
    }


def emulator_argv() -> list[str]:
    script = Path(sys.executable).with_name("aep-emulator")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "emulator"]
    return [*base, "serve"]


def floor_argv() -> list[str]:
    return [sys.executable, "-m", "benchmarks.floor"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# -- servers -----------------------------------------------------------------------------------------


class Server:
    """A server process on 127.0.0.1, pinned, with a hard lifetime; use as a context manager."""

    def __init__(self, argv: list[str], cpu_prefix: list[str], port: int = 0):
        watchdog = ["timeout", "-k", "2", str(SERVER_LIFETIME_S)] if shutil.which("timeout") else []
        self.argv = [*watchdog, *cpu_prefix, *argv, "--host", HOST, "--port", str(port)]
        self.port = port
        # Owned by the server for its whole life and closed in stop(), hence no `with`.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # its own process group, so stop() reaches `timeout` and the server
        )
        self.url = ""

    def wait_ready(self, prefix: str) -> str:
        """Read the one ready line the server prints; returns its base URL."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv} did not become ready: {self.stderr_tail()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"{self.argv} closed stdout: {self.stderr_tail()}")
                line += chunk
        text = line.decode().strip()
        if not text.startswith(prefix):
            raise RuntimeError(f"unexpected ready line {text!r}")
        self.url = "http://" + text.removeprefix(prefix)
        return self.url

    @property
    def server_pid(self) -> int:
        """The server itself (the child of `timeout`, when wrapped)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            pids = []
        return int(pids[0]) if self.argv[0] == "timeout" and pids else self.proc.pid

    def rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.server_pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- plain HTTP calls (setup, cold start) ------------------------------------------------------------


def call(url: str, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def call_json(url: str, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
    status, raw = call(url, method, path, headers, body)
    if status not in (200, 201):
        raise RuntimeError(f"{method} {path} answered {status}: {raw[:500]!r}")
    return json.loads(raw)


def create_dataset(url: str, sandbox: str) -> str:
    body = {
        "name": f"benchmark target ({sandbox})",
        "schemaRef": {"id": PROFILE_UNION, "contentType": "application/vnd.adobe.xed+json;version=1"},
        "fileDescription": {"format": "parquet"},
    }
    created = call_json(url, "POST", DATASETS, aep_headers(sandbox, body=True), body)
    return str(created[0].rsplit("/", 1)[1])


def default_merge_policy(url: str, sandbox: str) -> str:
    """The id of the tenant's default merge policy (each sandbox starts with one)."""
    listed = call_json(url, "GET", f"{MERGE_POLICIES}?default=true", aep_headers(sandbox))
    return str(listed["children"][0]["id"])


def create_job(url: str, sandbox: str, dataset_id: str, scenario: str | None = None) -> str:
    headers = aep_headers(sandbox, body=True)
    if scenario is not None:
        headers["x-emulator-scenario"] = scenario
    body = job_request(dataset_id, default_merge_policy(url, sandbox))
    return str(call_json(url, "POST", JOBS, headers, body)["id"])


async def _create_many(url: str, sandbox: str, dataset_id: str, count: int, concurrency: int) -> None:
    import aiohttp  # only the bulk path needs it; the harness itself stays stdlib

    body = json.dumps(job_request(dataset_id, default_merge_policy(url, sandbox))).encode()
    headers = aep_headers(sandbox, body=True)
    remaining = count

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with session.post(url + JOBS, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"bulk create answered {response.status}")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


def create_many(url: str, sandbox: str, dataset_id: str, count: int, concurrency: int) -> float:
    """Create `count` jobs through HTTP with a bounded concurrent client; returns the seconds it took."""
    started = time.perf_counter()
    asyncio.run(_create_many(url, sandbox, dataset_id, count, concurrency))
    return time.perf_counter() - started


def time_to_first_200(argv: list[str], path: str, cpus: Cpus) -> float:
    """Milliseconds from spawning the server to its first 200 on `path` (polled every millisecond)."""
    port = free_port()
    started = time.perf_counter()
    with Server(argv, cpus.prefix(cpus.server), port) as server:
        deadline = started + READY_TIMEOUT_S
        while time.perf_counter() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{argv} exited during cold start: {server.stderr_tail()}")
            try:
                status, _ = call(f"http://{HOST}:{port}", "GET", path, {})
            except OSError:
                time.sleep(0.001)
                continue
            if status == 200:
                return (time.perf_counter() - started) * 1000
            time.sleep(0.001)
    raise RuntimeError(f"{argv} gave no 200 on {path} within {READY_TIMEOUT_S} s")


# -- wrk ---------------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.requests > 0 and not any(self.errors.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def lua_script(method: str, headers: dict[str, str], body: str | None) -> str:
    """A wrk script: the request, and a `done` hook that prints one machine-readable line."""
    lines = [f'wrk.method = "{method}"']
    for name, value in headers.items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    if body is not None:
        lines.append(f"wrk.body = [==[{body}]==]")
    lines.append(
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        f"  io.write(string.format('{WRK_MARK}"
        '{"requests":%.0f,"duration_us":%.0f,"p50_us":%.1f,"p99_us":%.1f,"mean_us":%.1f,'
        '"max_us":%.1f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}\\n\','
        "\n    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),"
        "\n    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))\n"
        "end"
    )
    return "\n".join(lines) + "\n"


class Wrk:
    def __init__(self, config: Config, cpus: Cpus, folder: Path):
        self.config = config
        self.cpus = cpus
        self.folder = folder
        self._scripts = 0

    def script(self, method: str, headers: dict[str, str], body: Any = None) -> Path:
        self._scripts += 1
        path = self.folder / f"request-{self._scripts}.lua"
        path.write_text(lua_script(method, headers, None if body is None else json.dumps(body)))
        return path

    def warm(self, url: str, script: Path, *, connections: int | None = None) -> None:
        """A discarded run of `config.warmup` seconds, so that the measured ones see a warmed-up server."""
        if self.config.warmup > 0:
            self._once(url, script, connections or self.config.connections, self.config.warmup)

    def measure(
        self, url: str, script: Path, *, connections: int | None = None, duration: int | None = None
    ) -> WrkResult:
        return self._once(
            url, script, connections or self.config.connections, duration or self.config.duration
        )

    def _once(self, url: str, script: Path, connections: int, duration: int) -> WrkResult:
        argv = [
            *self.cpus.prefix(self.cpus.load),
            "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url,
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
        for line in done.stdout.splitlines():
            if line.startswith(WRK_MARK):
                raw = json.loads(line.removeprefix(WRK_MARK))
                seconds = raw["duration_us"] / 1e6
                return WrkResult(
                    requests=int(raw["requests"]),
                    duration_s=round(seconds, 3),
                    rps=round(raw["requests"] / seconds, 1) if seconds else 0.0,
                    p50_ms=round(raw["p50_us"] / 1000, 3),
                    p99_ms=round(raw["p99_us"] / 1000, 3),
                    mean_ms=round(raw["mean_us"] / 1000, 3),
                    max_ms=round(raw["max_us"] / 1000, 3),
                    errors={k: int(raw[k]) for k in ("connect", "read", "write", "status", "timeout")},
                )
        raise RuntimeError(f"wrk gave no result (exit {done.returncode}): {done.stdout}{done.stderr}")


# -- the run ---------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(config: Config, cpus: Cpus) -> dict[str, Any]:
    """Everything measured over HTTP, as plain data (see __main__ for the table)."""
    results: dict[str, Any] = {"cpus": asdict(cpus), "config": asdict(config)}
    results["cold_start_ms"] = cold_starts(config, cpus)
    with tempfile.TemporaryDirectory(prefix="aep-bench-") as folder:
        wrk = Wrk(config, cpus, Path(folder))
        results["throughput"] = throughput(config, cpus, wrk)
        results["list_latency"] = list_latency(config, cpus, wrk)
    return results


def cold_starts(config: Config, cpus: Cpus) -> dict[str, Any]:
    """Alternating floor and emulator, so that drift on the machine hits both alike."""
    samples: dict[str, list[float]] = {"floor": [], "emulator": []}
    for index in range(config.cold_starts):
        log(f"cold start {index + 1}/{config.cold_starts}")
        samples["floor"].append(round(time_to_first_200(floor_argv(), "/", cpus), 1))
        samples["emulator"].append(round(time_to_first_200(emulator_argv(), HEALTH, cpus), 1))
    found: dict[str, Any] = {n: {"samples": s, "median": statistics.median(s)} for n, s in samples.items()}
    found["ratio"] = round(found["emulator"]["median"] / found["floor"]["median"], 3)
    return found


def _rounds(
    wrk: Wrk, plan: list[tuple[str, str, Path]], rounds: int, **kwargs: Any
) -> dict[str, list[WrkResult]]:
    """Each target warmed up once, then measured `rounds` times, interleaved with the others."""
    for _name, url, script in plan:
        wrk.warm(url, script, connections=kwargs.get("connections"))
    found: dict[str, list[WrkResult]] = {name: [] for name, _, _ in plan}
    for index in range(rounds):
        for name, url, script in plan:
            log(f"round {index + 1}/{rounds}: {name}")
            found[name].append(wrk.measure(url, script, **kwargs))
    return found


def _paired_median(found: dict[str, list[WrkResult]], name: str, reference: str, metric: str) -> float | None:
    """The median over rounds of (name / reference), each round against its own reference run."""
    pairs = zip(found[name], found[reference], strict=True)
    values = [
        getattr(a, metric) / getattr(b, metric)
        for a, b in pairs
        if a.requests and b.requests and getattr(b, metric)
    ]
    return round(statistics.median(values), 3) if values else None


def _summary(results: list[WrkResult]) -> dict[str, Any]:
    """Best round first: other load on a shared machine only ever slows a run down, so the best round is
    the least disturbed one. Medians are kept alongside."""
    measured = [r for r in results if r.requests]
    return {
        "rps": max((r.rps for r in measured), default=0.0),
        "p50_ms": min((r.p50_ms for r in measured), default=None),
        "p99_ms": min((r.p99_ms for r in measured), default=None),
        "rps_median": round(statistics.median(r.rps for r in results), 1),
        "p50_ms_median": round(statistics.median(r.p50_ms for r in measured), 3) if measured else None,
        "ok": bool(measured) and not any(any(r.errors.values()) for r in results),
        "rounds": [r.to_json() for r in results],
    }


def _best_ratio(name: dict[str, Any], reference: dict[str, Any], metric: str) -> float | None:
    if not name[metric] or not reference[metric]:
        return None
    return round(float(name[metric]) / float(reference[metric]), 3)


THROUGHPUT_VS_FLOOR = {
    "get_job_processing": "floor_get",
    "get_job_succeeded": "floor_get",
    "list_first_page": "floor_get",
    "post_create": "floor_post",
}


def throughput(config: Config, cpus: Cpus, wrk: Wrk) -> dict[str, Any]:
    """Requests/s of the floor and the emulator under the same wrk load, interleaved round by round."""
    server_cpu = cpus.prefix(cpus.server)
    with (
        Server(floor_argv(), server_cpu) as floor,
        Server([*emulator_argv(), "--clock", "manual"], server_cpu) as emulator,
    ):
        floor_url = floor.wait_ready(FLOOR_READY)
        emu_url = emulator.wait_ready(EMULATOR_READY)
        rss_idle = {"floor": floor.rss_mb(), "emulator": emulator.rss_mb()}
        # Polling: a live job (`stuck` stays PROCESSING, so every GET really counts a poll) and a
        # finished one (the steady state once a client has seen SUCCEEDED).
        poll_ds = create_dataset(emu_url, "poll")
        live = create_job(emu_url, "poll", poll_ds, scenario="stuck")
        done = create_job(emu_url, "poll", poll_ds)
        for _ in range(2):
            call_json(emu_url, "GET", f"{JOBS}/{done}", aep_headers("poll"))
        list_ds = create_dataset(emu_url, "list")
        create_many(emu_url, "list", list_ds, config.small_jobs, config.create_concurrency)
        post_ds = create_dataset(emu_url, "post")

        get_poll = wrk.script("GET", aep_headers("poll"))
        get_list = wrk.script("GET", aep_headers("list"))
        post_body = job_request(post_ds, default_merge_policy(emu_url, "post"))
        post = wrk.script("POST", aep_headers("post", body=True), post_body)
        body_bytes = {
            "floor": len(call(floor_url, "GET", "/", {})[1]),
            "get_job": len(call(emu_url, "GET", f"{JOBS}/{live}", aep_headers("poll"))[1]),
            "list_first_page": len(call(emu_url, "GET", JOBS, aep_headers("list"))[1]),
            "post_request": len(json.dumps(post_body)),
        }
        plan = [
            ("floor_get", floor_url + "/", get_poll),
            ("get_job_processing", f"{emu_url}{JOBS}/{live}", get_poll),
            ("get_job_succeeded", f"{emu_url}{JOBS}/{done}", get_poll),
            ("list_first_page", f"{emu_url}{JOBS}", get_list),
            ("floor_post", floor_url + JOBS, post),
            ("post_create", f"{emu_url}{JOBS}", post),
        ]
        found = _rounds(wrk, plan, config.rounds)
        states = {
            "live": call_json(emu_url, "GET", f"{JOBS}/{live}", aep_headers("poll"))["status"],
            "done": call_json(emu_url, "GET", f"{JOBS}/{done}", aep_headers("poll"))["status"],
        }
        rss_end = {"floor": floor.rss_mb(), "emulator": emulator.rss_mb()}
    runs = {name: _summary(results) for name, results in found.items()}
    return {
        "runs": runs,
        "ratios": {
            name: _best_ratio(runs[name], runs[ref], "rps") for name, ref in THROUGHPUT_VS_FLOOR.items()
        },
        "ratios_median_of_rounds": {
            name: _paired_median(found, name, ref, "rps") for name, ref in THROUGHPUT_VS_FLOOR.items()
        },
        "body_bytes": body_bytes,
        "job_states_after": states,
        "rss_mb_idle": rss_idle,
        "rss_mb_end": rss_end,
    }


# Every documented sort and filter of the job list (all the jobs are NEW: a manual clock, never polled).
LATENCY_QUERIES = {
    "default": "",
    "sort_creation_asc": "?sort=creationTime:asc",
    "sort_update_time": "?sort=updateTime:desc",
    "sort_update_time_asc": "?sort=updateTime:asc",
    "status_match": "?status=NEW",
    "status_no_match": "?status=FAILED",
    "status_sorted": "?status=NEW&sort=updateTime:asc",
}


def list_latency(config: Config, cpus: Cpus, wrk: Wrk) -> dict[str, Any]:
    """First page of the job list on one connection: an emulator holding `small_jobs` jobs and one
    holding `large_jobs` (two processes, so heap size counts too), measured in interleaved rounds."""
    server_cpu = cpus.prefix(cpus.server)
    argv = [*emulator_argv(), "--clock", "manual"]
    with Server(argv, server_cpu) as small, Server(argv, server_cpu) as large:
        small_url = small.wait_ready(EMULATOR_READY)
        large_url = large.wait_ready(EMULATOR_READY)
        create_many(small_url, "list", create_dataset(small_url, "list"), config.small_jobs, 4)
        log(f"creating {config.large_jobs} jobs through HTTP ({config.create_concurrency} concurrent)")
        rss_before = large.rss_mb()
        seconds = create_many(
            large_url, "list", create_dataset(large_url, "list"), config.large_jobs, config.create_concurrency
        )
        rss_after = large.rss_mb()
        script = wrk.script("GET", aep_headers("list"))
        plan = []
        for name, query in LATENCY_QUERIES.items():
            plan.append((f"{name}_small", f"{small_url}{JOBS}{query}", script))
            plan.append((f"{name}_large", f"{large_url}{JOBS}{query}", script))
        found = _rounds(wrk, plan, config.rounds, connections=1, duration=config.latency_duration)
    queries: dict[str, Any] = {}
    for name in LATENCY_QUERIES:
        small_runs, large_runs = _summary(found[f"{name}_small"]), _summary(found[f"{name}_large"])
        queries[name] = {
            "small": small_runs,
            "large": large_runs,
            "ratio_p50": _best_ratio(large_runs, small_runs, "p50_ms"),
            "ratio_p50_median_of_rounds": _paired_median(found, f"{name}_large", f"{name}_small", "p50_ms"),
        }
    return {
        "small_jobs": config.small_jobs,
        "large_jobs": config.large_jobs,
        "queries": queries,
        "create_seconds": round(seconds, 2),
        "create_per_second": round(config.large_jobs / seconds, 1) if seconds else None,
        "rss_mb_large_before": rss_before,
        "rss_mb_large_after": rss_after,
    }
