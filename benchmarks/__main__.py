"""`python -m benchmarks`: the emulator side by side with a bare aiohttp app, in one run, as one table.

    python -m benchmarks [--quick] [--duration S] [--rounds N] [--json PATH] [--check]

Measures over HTTP (see http_bench.py), then runs the other benchmarks of this folder as subprocesses
(profiles_bench, memory_bench, fixture_bench, health_bench; each prints one JSON object on its last
stdout line), prints a table of ratios against the floor with PASS/FAIL per target (benchmarks/README.md,
"Targets"), and writes everything as JSON to benchmarks/results/<UTC timestamp>.json (and to --json PATH
when given).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import http_bench
from benchmarks.http_bench import Config, Cpus, log

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
QUICK = Config(duration=1, rounds=1, warmup=0, latency_duration=1, cold_starts=2, large_jobs=5_000)
SUB_TIMEOUT_S = 240
SUB_TIMEOUT_QUICK_S = 90
QUIET_BUSY_PERCENT = 10.0
NOISY_OTHER_CPUS = 0.2  # other processes' average CPU use during the run above which we warn


@dataclass
class Row:
    """One line of the table: a reference value, the emulator's value, the figure judged, the verdict."""

    metric: str
    reference: str
    emulator: str
    figure: str
    target: str
    result: str  # PASS | FAIL | info | n/a
    value: float | None = None

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


# -- running ----------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """Debian's wrk, installed with apt-get when missing (the machine's own package manager, as root)."""
    if shutil.which("wrk") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise SystemExit("wrk is missing: install it (Debian/Ubuntu: apt-get install -y wrk)")
        log("installing wrk with apt-get")
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
            subprocess.run(install, capture_output=True, check=False)
        if shutil.which("wrk") is None:
            raise SystemExit("could not install wrk with apt-get; install it by hand")
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (version.stdout or version.stderr).splitlines()[0].strip()


@dataclass(frozen=True)
class SubBenchmark:
    module: str  # benchmarks/<module>.py, run as `python -m benchmarks.<module>`
    title: str


SUB_BENCHMARKS = (
    SubBenchmark("profiles_bench", "profile generation"),
    SubBenchmark("membership_bench", "PQL membership"),
    SubBenchmark("memory_bench", "export memory"),
    SubBenchmark("fixture_bench", "pytest fixture"),
    SubBenchmark("health_bench", "health during a big download"),
)


def run_sub(bench: SubBenchmark, cpus: Cpus, quick: bool) -> dict[str, Any]:
    """Its last stdout line as JSON, or why there is none; pinned to the server core, bounded in time."""
    source = HERE / f"{bench.module}.py"
    if not source.exists():
        return {"available": False, "reason": f"not available (no benchmarks/{bench.module}.py)"}
    argv = [*cpus.prefix(cpus.server), sys.executable, "-m", f"benchmarks.{bench.module}"]
    if quick and "--quick" in source.read_text():
        argv.append("--quick")
    log(f"running {bench.module}")
    started = time.perf_counter()
    timeout = SUB_TIMEOUT_QUICK_S if quick else SUB_TIMEOUT_S
    try:
        done = subprocess.run(
            argv, cwd=HERE.parent, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"available": False, "reason": f"timed out after {timeout} s"}
    seconds = round(time.perf_counter() - started, 1)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        found = json.loads(lines[-1]) if lines else None
    except ValueError:
        found = None
    if done.returncode != 0 or not isinstance(found, dict):
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {
            "available": False,
            "reason": f"exit {done.returncode}, no JSON last line: {' / '.join(tail)[:300]}",
            "seconds": seconds,
        }
    return {"available": True, "seconds": seconds, "result": found}


# -- judging ----------------------------------------------------------------------------------------


def _flatten(document: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, document


def pick(document: dict[str, Any], *names: str) -> float | None:
    """The first number whose key (or dotted path) is one of `names`, searched in that order."""
    flat = dict(_flatten(document))
    for name in names:
        for path, value in flat.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and (path == name or path.endswith("." + name)):
                return float(value)
    return None


def verdict(value: float | None, ok: Callable[[float], bool], valid: bool = True) -> str:
    if value is None:
        return "n/a"
    return "PASS" if valid and ok(value) else "FAIL"


def at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def num(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def http_rows(http: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    runs = http["throughput"]["runs"]
    ratios = http["throughput"]["ratios"]
    sizes = http["throughput"]["body_bytes"]

    def throughput(name: str, label: str, reference: str, target: float | None) -> None:
        ratio = ratios[name]
        valid = runs[name]["ok"] and runs[reference]["ok"]
        rows.append(
            Row(
                metric=label,
                reference=num(runs[reference]["rps"], unit=" req/s"),
                emulator=num(runs[name]["rps"], unit=" req/s"),
                figure=times(ratio) + ("" if valid else " (errors)"),
                target="-" if target is None else f">= {target}x",
                result="info" if target is None else verdict(ratio, lambda v: v >= target, valid),
                value=ratio,
            )
        )

    throughput("get_job_processing", "GET job, polling (PROCESSING)", "floor_get", 0.8)
    throughput("get_job_succeeded", "GET job, polling (SUCCEEDED)", "floor_get", 0.8)
    throughput(
        "list_first_page",
        f"GET job list, first page ({sizes['list_first_page'] // 1024} KB vs {sizes['floor']} B)",
        "floor_get",
        None,
    )
    throughput("post_create", "POST create job (validated)", "floor_post", 0.4)

    cold = http["cold_start_ms"]
    rows.append(
        Row(
            metric="Cold start to first 200 (median)",
            reference=num(cold["floor"]["median"], 1, " ms"),
            emulator=num(cold["emulator"]["median"], 1, " ms"),
            figure=f"{cold['ratio']:.2f}x",
            target="<= 1.5x",
            result=verdict(cold["ratio"], lambda v: v <= 1.5),
            value=cold["ratio"],
        )
    )

    latency = http["list_latency"]
    small, large = latency["small_jobs"], latency["large_jobs"]
    labels = {  # DESIGN.md 6: every documented sort and filter within 2x
        "default": ("List first page p50", 2.0),
        "sort_creation_asc": ("List p50, sort=creationTime:asc", 2.0),
        "sort_update_time": ("List p50, sort=updateTime:desc", 2.0),
        "sort_update_time_asc": ("List p50, sort=updateTime:asc", 2.0),
        "status_match": ("List p50, status=NEW (all match)", 2.0),
        "status_no_match": ("List p50, status=FAILED (none match)", 2.0),
        "status_sorted": ("List p50, status=NEW&sort=updateTime:asc", 2.0),
    }
    for name, (label, limit) in labels.items():
        query = latency["queries"][name]
        ratio = query["ratio_p50"]
        valid = query["small"]["ok"] and query["large"]["ok"]
        rows.append(
            Row(
                metric=f"{label}, {small:,} vs {large:,} jobs",
                reference=num(query["small"]["p50_ms"], 2, " ms"),
                emulator=num(query["large"]["p50_ms"], 2, " ms"),
                figure=times(ratio) + ("" if valid else " (errors)"),
                target="-" if limit is None else f"<= {limit}x",
                result="info" if limit is None else verdict(ratio, at_most(limit), valid),
                value=ratio,
            )
        )
    rows.append(
        Row(
            metric=f"Create {large:,} jobs over HTTP (bulk client)",
            reference="-",
            emulator=f"{latency['create_seconds']:.1f} s",
            figure=num(latency["create_per_second"], unit=" jobs/s"),
            target="-",
            result="info",
            value=latency["create_per_second"],
        )
    )
    before, after = latency["rss_mb_large_before"], latency["rss_mb_large_after"]
    rows.append(
        Row(
            metric=f"Emulator RSS, idle vs {large:,} jobs",
            reference=num(before, 1, " MB"),
            emulator=num(after, 1, " MB"),
            figure=num(None if before is None or after is None else after - before, 1, " MB"),
            target="-",
            result="info",
        )
    )
    return rows


def sub_rows(subs: dict[str, dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []

    def missing(metric: str, target: str, sub: dict[str, Any]) -> Row:
        reason = str(sub.get("reason", "not available"))
        shown = reason if len(reason) <= 60 else reason[:57] + "..."  # the JSON keeps all of it
        return Row(metric, "-", shown, "-", target, "n/a")

    fixture = subs["fixture_bench"]
    if fixture["available"]:
        ms = pick(fixture["result"], "fixture_ms", "per_test_ms", "ms_per_test", "setup_teardown_ms")
        rows.append(
            Row(
                "Fresh fixture per test",
                "-",
                num(ms, 2, " ms"),
                num(ms, 2, " ms"),
                "< 20 ms",
                verdict(ms, lambda v: v < 20),
                ms,
            )
        )
    else:
        rows.append(missing("Fresh fixture per test", "< 20 ms", fixture))

    profiles = subs["profiles_bench"]
    if profiles["available"]:
        rate = pick(profiles["result"], "profiles_per_second", "profiles_per_s", "rate")
        rows.append(
            Row(
                "Profiles into Parquet, one core",
                "-",
                num(rate, unit=" /s"),
                num(rate, unit=" /s"),
                ">= 50,000 /s",
                verdict(rate, lambda v: v >= 50_000),
                rate,
            )
        )
    else:
        rows.append(missing("Profiles into Parquet, one core", ">= 50,000 /s", profiles))

    membership = subs["membership_bench"]
    for key, title in (
        ("attribute_profiles_per_second", "PQL membership, attribute predicate, one core"),
        ("event_count_profiles_per_second", "PQL membership, event-count predicate, one core"),
    ):
        if membership["available"]:
            rate = pick(membership["result"], key)
            rows.append(
                Row(
                    title,
                    "-",
                    num(rate, unit=" /s"),
                    num(rate, unit=" /s"),
                    ">= 200,000 /s",
                    verdict(rate, lambda v: v >= 200_000),
                    rate,
                )
            )
        else:
            rows.append(missing(title, ">= 200,000 /s", membership))
    if membership["available"]:
        delta = pick(membership["result"], "delta_mb")
        small, large = pick(membership["result"], "rss_mb_10k"), pick(membership["result"], "rss_mb_1m")
        rows.append(
            Row(
                "PQL membership peak RSS, 10k vs 1m profiles",
                num(small, 1, " MB"),
                num(large, 1, " MB"),
                num(delta, 1, " MB"),
                "<= 20 MB",
                verdict(delta, lambda v: abs(v) <= 20),
                delta,
            )
        )

    memory = subs["memory_bench"]
    if memory["available"]:
        result = memory["result"]
        # `rss_mb_<size>` for the small then the large export (e.g. rss_mb_10k, rss_mb_1m), then delta_mb.
        sizes = [(k.removeprefix("rss_mb_"), v) for k, v in result.items() if k.startswith("rss_mb_")]
        (small_label, small), (large_label, large) = [*sizes, ("?", None), ("?", None)][:2]
        delta = pick(result, "delta_mb")
        if delta is None and small is not None and large is not None:
            delta = large - small
        rows.append(
            Row(
                f"Export peak RSS, {small_label} vs {large_label} profiles",
                num(small, 1, " MB"),
                num(large, 1, " MB"),
                num(delta, 1, " MB"),
                "<= 20 MB",
                verdict(delta, lambda v: abs(v) <= 20),
                delta,
            )
        )
    else:
        rows.append(missing("Export peak RSS, 10k vs 1m profiles", "<= 20 MB", memory))

    health = subs["health_bench"]
    if health["available"]:
        p99 = pick(health["result"], "health_p99_ms")
        profiles = pick(health["result"], "profiles")
        rows.append(
            Row(
                f"Health p99 while a {num(profiles)}-profile file renders",
                "-",
                num(p99, 1, " ms"),
                num(p99, 1, " ms"),
                "< 100 ms",
                verdict(p99, lambda v: v < 100),
                p99,
            )
        )
    else:
        rows.append(missing("Health p99 while a 1M-profile file renders", "< 100 ms", health))
    return rows


def table(rows: list[Row]) -> str:
    header = Row("metric", "floor / reference", "emulator", "ratio / value", "target", "result")
    cells = [[r.metric, r.reference, r.emulator, r.figure, r.target, r.result] for r in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(6)]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


# -- meta -------------------------------------------------------------------------------------------


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Percent of all CPUs busy over `seconds`: other load skews every ratio."""
    try:
        busy_before, total_before = _busy_jiffies()
        time.sleep(seconds)
        busy_after, total_after = _busy_jiffies()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return round(100 * (busy_after - busy_before) / total, 1) if total else None


class OtherLoad:
    """CPUs used by processes other than this run (this process, the servers, wrk and the other
    benchmarks are all waited-for children) while it lasted: the machine's busy time minus ours."""

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            busy, _ = _busy_jiffies()
        except (OSError, ValueError, IndexError):
            return None
        own = os.times()
        ours = own.user + own.system + own.children_user + own.children_system
        return busy / os.sysconf("SC_CLK_TCK"), ours, time.monotonic()

    def cpus(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None or end[2] <= self._start[2]:
            return None
        others = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return round(max(0.0, others) / (end[2] - self._start[2]), 2)


def wait_until_quiet(limit_s: float) -> float | None:
    """Sample until the machine is quiet (or `limit_s` runs out); returns the last busy percent."""
    deadline = time.monotonic() + limit_s
    busy = cpu_busy()
    while busy is not None and busy > QUIET_BUSY_PERCENT and time.monotonic() < deadline:
        log(f"machine {busy:.0f}% busy; waiting for it to be quiet")
        busy = cpu_busy(2.0)
    return busy


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        total_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory_gb = round(total_kb / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": model or platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("aep-emulator", "aiohttp", "jsonschema", "pyarrow", "faker"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def tree_hash() -> str:
    """What was measured, even in an uncommitted tree: a digest of the package, schemas and scenarios."""
    digest = hashlib.sha256()
    root = HERE.parent
    for folder in ("emulator", "schemas", "scenarios"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".json", ".yaml", ".yml"):
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


# -- main -------------------------------------------------------------------------------------------


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
    cpus = http_bench.pick_cpus()
    if cpus.load is not None:
        os.sched_setaffinity(0, {cpus.load})  # this process and wrk load from their own core
    else:
        log("fewer than 2 cores: servers and load share the CPU, ratios are less meaningful")

    http = http_bench.run(config, cpus)
    subs = {
        bench.module: (
            {"available": False, "reason": "skipped (--no-sub)"}
            if args.no_sub
            else run_sub(bench, cpus, args.quick)
        )
        for bench in SUB_BENCHMARKS
    }
    rows = http_rows(http) + sub_rows(subs)
    elapsed = round(time.perf_counter() - started, 1)
    others = other_load.cpus()

    meta = {
        "timestamp": stamp,
        "quick": args.quick,
        "seconds": elapsed,
        "revision": revision(),
        "tree": tree_hash(),
        "machine": machine(),
        "versions": {**versions(), "wrk": wrk_version},
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
