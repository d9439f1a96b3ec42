"""Does an open dashboard slow the emulator down? `python -m benchmarks.dashboard_bench [--rounds N]`

The same GET-job and POST-create loads as the main benchmark (wrk against the emulator and the floor,
interleaved round by round, see http_bench.py), measured twice: with no dashboard open, then with three
dashboard tabs open and streaming in headless Chromium (Debian's, through Playwright): the polled tenant's
jobs, the polled job itself and the request journal, each redrawn on every notice of the live feed. The
browser runs on the load core, beside wrk; the emulator keeps its own core. Prints one JSON object (its last
line) with the ratios to the floor in both states.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.http_bench import (
    EMULATOR_READY,
    FLOOR_READY,
    JOBS,
    Config,
    Server,
    Wrk,
    _best_ratio,
    _paired_median,
    _rounds,
    _summary,
    aep_headers,
    call_json,
    create_dataset,
    create_job,
    emulator_argv,
    floor_argv,
    job_request,
    log,
    pick_cpus,
)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RATIOS = {"get_job_processing": "floor_get", "post_create": "floor_post"}


def measure(wrk: Wrk, plan: list[tuple[str, str, Path]], rounds: int) -> dict[str, Any]:
    found = _rounds(wrk, plan, rounds)
    runs = {name: _summary(results) for name, results in found.items()}
    return {
        "rps": {name: run["rps"] for name, run in runs.items()},
        "ratios": {name: _best_ratio(runs[name], runs[ref], "rps") for name, ref in RATIOS.items()},
        "ratios_median_of_rounds": {
            name: _paired_median(found, name, ref, "rps") for name, ref in RATIOS.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=1)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    cpus = pick_cpus()
    config = Config(duration=args.duration, rounds=args.rounds, warmup=1)
    server_cpu = cpus.prefix(cpus.server)
    with (
        tempfile.TemporaryDirectory(prefix="aep-dash-bench-") as folder,
        Server(floor_argv(), server_cpu) as floor,
        Server([*emulator_argv(), "--clock", "manual"], server_cpu) as emulator,
    ):
        wrk = Wrk(config, cpus, Path(folder))
        floor_url = floor.wait_ready(FLOOR_READY)
        emu_url = emulator.wait_ready(EMULATOR_READY)
        poll_ds = create_dataset(emu_url, "poll")
        live = create_job(emu_url, "poll", poll_ds, scenario="stuck")
        post_ds = create_dataset(emu_url, "post")
        get_poll = wrk.script("GET", aep_headers("poll"))
        post = wrk.script("POST", aep_headers("post", body=True), job_request(post_ds))
        plan = [
            ("floor_get", floor_url + "/", get_poll),
            ("get_job_processing", f"{emu_url}{JOBS}/{live}", get_poll),
            ("floor_post", floor_url + JOBS, post),
            ("post_create", f"{emu_url}{JOBS}", post),
        ]
        log("no dashboard open")
        closed = measure(wrk, plan, config.rounds)
        if cpus.load is not None:
            os.sched_setaffinity(0, {cpus.load})  # the browser, started from here, shares wrk's core
        org = aep_headers("poll")["x-gw-ims-org-id"]
        tabs = [
            f"{emu_url}/_emulator/ui/jobs?org={org}&sandbox=poll",
            f"{emu_url}/_emulator/ui/jobs/{live}",
            f"{emu_url}/_emulator/ui/requests",
        ]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=os.environ.get("AEP_EMULATOR_CHROMIUM", "/usr/bin/chromium"),
                args=CHROMIUM_ARGS,
            )
            pages = []
            for url in tabs:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url)
                page.wait_for_selector('body[data-live="on"]')
                pages.append(page)
            counter = (
                "window.__redraws = 0; new MutationObserver(() => window.__redraws++)"
                ".observe(document.getElementById('live'), {childList: true});"
            )
            for page in pages:
                page.evaluate(counter)
            log("three dashboard tabs open and streaming")
            opened = measure(wrk, plan, config.rounds)
            redraws = [page.evaluate("window.__redraws") for page in pages]
            browser.close()
        status = call_json(emu_url, "GET", f"{JOBS}/{live}", aep_headers("poll"))["status"]
    print(
        json.dumps(
            {
                "config": {"rounds": config.rounds, "duration_s": config.duration, "cpus": cpus.__dict__},
                "closed": closed,
                "open": opened,
                "redraws_per_tab": redraws,
                "job_status_after": status,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
