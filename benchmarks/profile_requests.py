"""Where a request's time goes: `aep-emulator serve` (and the floor) sampled with py-spy under the benchmark's
GET and POST load, as a per-request cost budget in microseconds of CPU.

    python -m benchmarks.profile_requests [--seconds 8] [--rate 1000] [--markdown]

Each target (floor GET, emulator GET poll of a live job, floor POST, emulator POST create) is loaded with
the same wrk script as `python -m benchmarks` (servers and wrk pinned the same way) while py-spy samples the
server (`--nonblocking`: it never pauses it). Its CPU time (from /proc, so other load on the machine does
not inflate it) divided by the requests wrk made is the cost of one request; the samples split that cost
into steps. A sample belongs to the innermost emulator step on its stack (the gateway, the size checks,
validation, ...: see STEPS), so a step's figure includes what it calls in aiohttp or the standard library;
a sample under no emulator step is aiohttp's or asyncio's own work (routing, parsing, writing, the loop).
Samples of the idle loop (waiting in epoll) are not counted.

Writes the table and the raw stacks (py-spy's collapsed format, for a flame graph) to
benchmarks/results/profile-<UTC timestamp>/. Needs py-spy (`pip install py-spy`; installed into this
Python's environment with pip when missing) and ptrace rights on the server (root, or
kernel.yama.ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.servers import (
    EMULATOR_READY,
    FLOOR_READY,
    JOBS,
    Config,
    Cpus,
    Server,
    aep_headers,
    create_dataset,
    create_job,
    default_merge_policy,
    emulator_argv,
    floor_argv,
    job_request,
    log,
    pick_cpus,
)
from benchmarks.wrk import Wrk

HERE = Path(__file__).resolve().parent
IDLE = "(idle: waiting in epoll)"
# (step, file suffix, function names or None for any function of the file). The innermost frame that
# matches one of these names the sample's step.
STEPS: tuple[tuple[str, str, frozenset[str] | None], ...] = (
    ("dispatcher: the rest", "emulator/api/dispatch.py", frozenset({"Dispatcher.handle"})),
    ("routing (our route table)", "emulator/api/routing.py", None),
    ("size checks", "emulator/api/dispatch.py", frozenset({"_check_sizes"})),
    ("gateway admission", "emulator/gateway.py", frozenset({"admit", "is_json", "_require_text"})),
    ("journal entry", "emulator/api/dispatch.py", frozenset({"_body_text", "_response_body"})),
    ("journal entry", "emulator/journal.py", None),
    ("tenant and job lookup", "emulator/api/common.py", frozenset({"Call.own_tenant", "Call.__init__"})),
    ("tenant and job lookup", "emulator/jobs.py", frozenset({"ExportJobs.get", "_job_number"})),
    ("lifecycle poll", "emulator/jobs.py", frozenset({"ExportJobs.poll", "ExportJobs._current"})),
    ("faults", "emulator/faults.py", None),
    ("faults", "emulator/jobs.py", frozenset({"ExportJobs.job_fault", "ExportJobs.tenant_fault"})),
    ("counters", "emulator/backend.py", frozenset({"Backend.prepare_counters", "Backend.job_counters"})),
    ("body read", "emulator/api/bodies.py", None),
    ("body read", "emulator/api/common.py", frozenset({"body_of"})),
    ("JSON parse and depth check", "emulator/api/common.py", frozenset({"read_json", "_depth_exceeds"})),
    ("validation", "emulator/validation.py", None),
    ("job creation (domain)", "emulator/jobs.py", frozenset({"ExportJobs.create"})),
    ("response body (JSON)", "emulator/api/export_jobs.py", frozenset({"_job_bytes"})),
    ("response body (JSON)", "emulator/job_view.py", None),
    ("response body (JSON)", "emulator/api/common.py", frozenset({"json_response"})),
    ("handler: the rest (web.Response)", "emulator/api/export_jobs.py", frozenset({"get_job", "create_job"})),
    ("handler (web.Response)", "benchmarks/floor.py", frozenset({"serve_document"})),
)
# A sample under no emulator step: the innermost frame of these files names it.
FRAMEWORK: tuple[tuple[str, str], ...] = (
    ("aiohttp/web_urldispatcher.py", "aiohttp: routing"),
    ("aiohttp/web_response.py", "aiohttp: response write"),
    ("aiohttp/http_writer.py", "aiohttp: response write"),
    ("aiohttp/web_protocol.py", "aiohttp: request parsing and dispatch"),
    ("aiohttp/web_request.py", "aiohttp: request parsing and dispatch"),
    ("aiohttp/", "aiohttp: request parsing and dispatch"),
    ("asyncio/", "asyncio: event loop and sockets"),
    ("selectors.py", "asyncio: event loop and sockets"),
)
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def classify(stack: str) -> str:
    frames = [_frame(frame) for frame in stack.split(";")]
    if frames and frames[-1][0].endswith("select") and frames[-1][1].endswith("selectors.py"):
        return IDLE
    for function, path in reversed(frames):
        for step, suffix, functions in STEPS:
            if path.endswith(suffix) and (functions is None or _name(function) in functions):
                return step
    for _function, path in reversed(frames):
        for suffix, step in FRAMEWORK:
            if suffix in path:
                return step
    return "other"


def _name(function: str) -> str:
    """`Class.method` or `function`, without the `outer.<locals>.` of a closure."""
    return function.rpartition(".<locals>.")[2]


def _frame(frame: str) -> tuple[str, str]:
    found = _FRAME.match(frame)
    return (found["function"], found["file"]) if found else (frame, "")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        log("installing py-spy with pip")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
        found = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("py-spy is missing: pip install py-spy")
    return found


def profile(
    server: Server,
    url: str,
    script: Path,
    wrk: Wrk,
    seconds: int,
    rate: int,
    raw: Path,
    *,
    blocking: bool = False,
) -> dict[str, Any]:
    """Load `url` for `seconds` while py-spy samples the server; the CPU cost of a request, by step."""
    pid = server.server_pid
    wrk.measure(url, script, duration=1)  # warm-up
    record = [
        "record",
        *([] if blocking else ["--nonblocking"]),
        "-r",
        str(rate),
        "-d",
        str(seconds + 2),
        "-f",
        "raw",
    ]
    spy = subprocess.Popen(
        [*wrk.cpus.prefix(wrk.cpus.load), py_spy(), *record, "-o", str(raw), "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # py-spy attached before the load starts
    before = cpu_seconds(pid)
    result = wrk.measure(url, script, duration=seconds)
    used = cpu_seconds(pid) - before
    _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    samples: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples[classify(stack)] += int(count)
    busy = sum(n for step, n in samples.items() if step != IDLE)
    per_request_us = used / result.requests * 1e6 if result.requests else 0.0
    return {
        "requests": result.requests,
        "rps": result.rps,
        "ok": result.ok,
        "cpu_seconds": round(used, 3),
        "cpu_us_per_request": round(per_request_us, 1),
        "samples": dict(samples),
        "steps_us": {
            step: round(per_request_us * count / busy, 1)
            for step, count in samples.most_common()
            if step != IDLE and busy
        },
    }


def markdown(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    steps: list[str] = []
    for result in results.values():
        steps += [step for step in result["steps_us"] if step not in steps]
    lines = [
        "| step (us of CPU per request) | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for step in steps:
        cells = [
            f"{results[n]['steps_us'][step]:.1f}" if step in results[n]["steps_us"] else "-" for n in names
        ]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines.append(
        "| **total** | " + " | ".join(f"**{results[n]['cpu_us_per_request']:.1f}**" for n in names) + " |"
    )
    lines.append(
        "| requests/s under profiling | " + " | ".join(f"{results[n]['rps']:,.0f}" for n in names) + " |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_requests", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=int, default=8, help="seconds of load (and sampling) per target")
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument(
        "--blocking",
        action="store_true",
        help="let py-spy pause the server for each sample (exact stacks; the server runs slower meanwhile)",
    )
    parser.add_argument("--out", type=Path, help="folder for the results (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or HERE / "results" / f"profile-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    cpus: Cpus = pick_cpus()
    if cpus.load is not None:
        os.sched_setaffinity(0, {cpus.load})
    server_cpu = cpus.prefix(cpus.server)
    results: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="aep-profile-") as folder,
        Server(floor_argv(), server_cpu) as floor,
        Server([*emulator_argv(), "--clock", "manual"], server_cpu) as emulator,
    ):
        floor_url = floor.wait_ready(FLOOR_READY)
        emu_url = emulator.wait_ready(EMULATOR_READY)
        live = create_job(emu_url, "poll", create_dataset(emu_url, "poll"), scenario="stuck")
        post_ds = create_dataset(emu_url, "post")
        wrk = Wrk(replace(Config(), warmup=0), cpus, Path(folder))
        get_poll = wrk.script("GET", aep_headers("poll"))
        post_body = job_request(post_ds, default_merge_policy(emu_url, "post"))
        post = wrk.script("POST", aep_headers("post", body=True), post_body)
        plan = [
            ("floor GET", floor, floor_url + "/", get_poll),
            ("emulator GET poll", emulator, f"{emu_url}{JOBS}/{live}", get_poll),
            ("floor POST", floor, floor_url + JOBS, post),
            ("emulator POST create", emulator, emu_url + JOBS, post),
        ]
        for name, server, url, script in plan:
            log(f"profiling {name} for {args.seconds} s")
            raw = out / (name.replace(" ", "-") + ".txt")
            results[name] = profile(
                server, url, script, wrk, args.seconds, args.rate, raw, blocking=args.blocking
            )
    table = markdown(results)
    (out / "budget.md").write_text(table + "\n")
    (out / "budget.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table)
    print(f"\nresults and raw stacks: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
