"""A/B of whole trees: the floor and `aep-emulator serve` from one or more checkouts, side by side on the
servers' core, loaded in interleaved rounds with the benchmark's own `wrk` scripts (a poll of a `stuck` job,
and a validated create), each measured as the server's CPU time per request (from /proc, which other load on
the machine hardly moves) as well as requests/s. This is how each cut in benchmarks/README.md was measured.

    python -m benchmarks.ab [--rounds 6] [--duration 1] --tree before=/path/to/checkout --tree after=.

Each `--tree NAME=PATH` is started as `python -m emulator serve --clock manual` from PATH, so its own
`emulator` package is the one imported (a `git worktree add --detach /tmp/before REV` makes one). Every tree
is byte-compiled first, as the full benchmark does. The last stdout line is JSON: per target its rounds, and
min / median of CPU microseconds per request.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.servers import (
    EMULATOR_READY,
    FLOOR_READY,
    JOBS,
    REPO,
    Config,
    Server,
    aep_headers,
    byte_compile,
    create_dataset,
    create_job,
    default_merge_policy,
    floor_argv,
    job_request,
    pick_cpus,
)
from benchmarks.wrk import Wrk

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(server: Server) -> float:
    """User and system time of the server process so far."""
    fields = Path(f"/proc/{server.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=1, help="seconds of each measured wrk run")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args()
    trees = {name: Path(path).resolve() for name, path in (t.split("=", 1) for t in args.tree)}
    trees = trees or {"emulator": REPO}
    for tree in {REPO, *trees.values()}:
        byte_compile(tree)
    cpus = pick_cpus()
    prefix = cpus.prefix(cpus.server)
    wrk = Wrk(Config(duration=args.duration), cpus, Path(tempfile.mkdtemp(prefix="aep-ab-")))
    get = wrk.script("GET", aep_headers("poll"))
    servers = [Server(floor_argv(), prefix)]
    try:
        floor_url = servers[0].wait_ready(FLOOR_READY)
        post = None
        plan: list[tuple[str, str, Path, Server]] = []
        for name, tree in trees.items():
            server = Server(
                [sys.executable, "-m", "emulator", "serve", "--clock", "manual"], prefix, cwd=tree
            )
            servers.append(server)
            url = server.wait_ready(EMULATOR_READY)
            live = create_job(url, "poll", create_dataset(url, "poll"), scenario="stuck")
            dataset = create_dataset(url, "post")
            post = wrk.script(
                "POST",
                aep_headers("post", body=True),
                job_request(dataset, default_merge_policy(url, "post")),
            )
            plan += [
                (f"{name} GET", f"{url}{JOBS}/{live}", get, server),
                (f"{name} POST", f"{url}{JOBS}", post, server),
            ]
        assert post is not None
        plan = [
            ("floor GET", floor_url + "/", get, servers[0]),
            ("floor POST", floor_url + JOBS, post, servers[0]),
            *plan,
        ]
        for _, url, script, _ in plan:
            wrk.warm(url, script)
        found: dict[str, dict[str, list[float]]] = {name: {"cpu_us": [], "rps": []} for name, *_ in plan}
        for index in range(args.rounds):
            for name, url, script, server in plan:
                before = cpu_seconds(server)
                result = wrk.measure(url, script)
                if not result.ok:
                    raise RuntimeError(f"{name}: {result}")
                found[name]["cpu_us"].append(round((cpu_seconds(server) - before) / result.requests * 1e6, 1))
                found[name]["rps"].append(result.rps)
            print(f"round {index + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for server in servers:
            server.stop()
    summary: dict[str, Any] = {}
    for name, runs in found.items():
        floor = found[f"floor {name.rpartition(' ')[2]}"]["cpu_us"]
        cpu = runs["cpu_us"]
        summary[name] = {
            **runs,
            "min": min(cpu),
            "median": statistics.median(cpu),
            "ratio": round(min(floor) / min(cpu), 3),
        }
        shown = f"min {min(cpu):6.1f} median {statistics.median(cpu):6.1f}"
        print(f"{name:24s} CPU us/request {shown}  ratio {summary[name]['ratio']}x")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
