"""The servers a benchmark runs and how it talks to them: each on 127.0.0.1, pinned to one core, with a
hard lifetime (coreutils `timeout`, so it dies on its own even if the harness is killed; `Server.stop`
ends its whole process group in a `finally`), and plain stdlib HTTP calls for setting them up.
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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
# A server that outlives this is killed by `timeout` even if the harness died without cleaning up.
SERVER_LIFETIME_S = 900
READY_TIMEOUT_S = 30.0
PEER_READY_TIMEOUT_S = 90.0  # a JVM or Node start on a busy shared core


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
    # Seconds of load on each peer target before its first measured run: on one core the JVM takes some
    # 10-20 s of load to compile WireMock's hot path. Longer than ours, so that a peer is measured warm
    # (it can only favour the peer).
    peer_warmup: int = 10


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


def byte_compile(tree: Path = REPO) -> None:
    """Compile the emulator's modules (and the floor's) to bytecode, as an installed package has them: pip
    compiles a wheel at install time, and a checkout writes its bytecode on its first run. Unless
    PYTHONDONTWRITEBYTECODE is set (some sandboxes and CI images set it): then every start would compile the
    emulator's ~15,000 lines again, some 70 ms a cold start that no installed emulator pays, while the
    floor's libraries come compiled from site-packages."""
    targets = [tree / "emulator", tree / "benchmarks" / "floor.py"]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *(str(t) for t in targets if t.exists())],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# -- servers -----------------------------------------------------------------------------------------


class Server:
    """A server process on 127.0.0.1, pinned, with a hard lifetime; use as a context manager.

    Ours (the floor and the emulator) take `--host` and `--port` and print one ready line (`wait_ready`);
    a peer is given its full command line (`listen=False`) and is ready when it answers (`wait_http`)."""

    def __init__(
        self, argv: list[str], cpu_prefix: list[str], port: int = 0, *, listen: bool = True, cwd: Path = REPO
    ):
        watchdog = ["timeout", "-k", "2", str(SERVER_LIFETIME_S)] if shutil.which("timeout") else []
        address = ["--host", HOST, "--port", str(port)] if listen else []
        self.argv = [*watchdog, *cpu_prefix, *argv, *address]
        self.port = port
        # Owned by the server for its whole life and closed in stop(), hence no `with`.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,  # `python -m emulator` runs the emulator of this folder
            stdin=subprocess.DEVNULL,
            # A peer's own output goes with its stderr: a pipe nobody reads would block it once full.
            stdout=subprocess.PIPE if listen else self._stderr,
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

    def wait_http(self, path: str, headers: dict[str, str], timeout: float = PEER_READY_TIMEOUT_S) -> str:
        """Poll `path` until it answers 200; returns the base URL."""
        url = f"http://{HOST}:{self.port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv} exited before it was ready: {self.stderr_tail()}")
            try:
                if call(url, "GET", path, headers)[0] == 200:
                    self.url = url
                    return url
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.argv} gave no 200 on {path} within {timeout} s: {self.stderr_tail()}")

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
        wait_for_200(port, path, started, lambda: server.proc.poll() is None, argv)
        return (time.perf_counter() - started) * 1000


def wait_for_200(port: int, path: str, started: float, alive: Callable[[], bool], argv: list[str]) -> None:
    """Poll `path` every millisecond until it answers 200, within READY_TIMEOUT_S of `started`."""
    deadline = started + READY_TIMEOUT_S
    while time.perf_counter() < deadline:
        if not alive():
            raise RuntimeError(f"{argv} exited during cold start")
        try:
            status, _ = call(f"http://{HOST}:{port}", "GET", path, {})
        except OSError:
            time.sleep(0.001)
            continue
        if status == 200:
            return
        time.sleep(0.001)
    raise RuntimeError(f"{argv} gave no 200 on {path} within {READY_TIMEOUT_S} s")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
