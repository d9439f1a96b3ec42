"""`aep-emulator serve | scenarios validate | scenarios list`; serve flags also read AEP_EMULATOR_*."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from emulator.clock import check_speed
from emulator.options import (
    DEFAULT_FILE_CACHE_BYTES,
    DEFAULT_JOURNAL_LIMIT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_JOBS_PER_TENANT,
    DEFAULT_SAVE_INTERVAL_SECONDS,
    MAX_SPEED,
    Options,
)
from emulator.scenarios import ScenarioError, bundled, load_file, load_paths
from emulator.timestamps import rfc3339_ms

ENV_PREFIX = "AEP_EMULATOR_"
EXIT_USAGE = 2
CLOCKS = ("real", "manual")
AUTH_MODES = ("open", "strict")
VALIDATION_MODES = ("strict", "lenient")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
GC_YOUNG_THRESHOLD = 20_000  # container allocations between young collections (Python's default: 700)


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are the one line the contract promises."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str) -> NoReturn:
    print(f"aep-emulator: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_USAGE)


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(ENV_PREFIX + name.upper().replace("-", "_"), default)


def _rfc3339_ms(text: str) -> int:
    try:
        return rfc3339_ms(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp with an offset: '{text}'") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: '{text}'")
    return value


def _speed(text: str) -> float:
    try:
        return check_speed(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc.args[0].removeprefix('--speed ')} ('{text}')") from None


def _count(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}: '{text}'")
        return value

    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: '{text}'") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535: '{text}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aep-emulator", description="Emulator of AEP's asynchronous export path.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the emulator (flags also read AEP_EMULATOR_<FLAG>)")
    env_scenarios = _env("scenarios")
    serve.add_argument("--host", default=_env("host", "127.0.0.1"))
    serve.add_argument("--port", type=_port, default=_env("port", "8080"), help="0 picks a free port")
    serve.add_argument(
        "--scenarios",
        type=Path,
        action="append",
        default=[Path(p) for p in env_scenarios.split(os.pathsep)] if env_scenarios else [],
        help="scenario file or folder (repeatable; env: paths joined by the OS path separator)",
    )
    serve.add_argument("--default-scenario", default=_env("default_scenario", "success"))
    serve.add_argument("--seed", type=int, default=_env("seed", "0"))
    serve.add_argument("--clock", choices=CLOCKS, default=_env("clock", "real"))
    serve.add_argument(
        "--speed",
        type=_speed,
        default=_env("speed", "1"),
        help=f"how fast a real clock runs: above 0, at most {MAX_SPEED:,.0f} (default %(default)s)",
    )
    serve.add_argument("--start-time", type=_rfc3339_ms, default=_env("start_time"), help="RFC 3339")
    serve.add_argument("--auth", choices=AUTH_MODES, default=_env("auth", "open"))
    serve.add_argument(
        "--validation",
        choices=VALIDATION_MODES,
        default=_env("validation", "strict"),
        help="request bodies that break their schema: refused with 400 (strict), or logged and served "
        "where the emulator can (lenient)",
    )
    serve.add_argument(
        "--credentials",
        type=Path,
        default=_env("credentials"),
        help="YAML or JSON file of the client ids, secrets and orgs IMS accepts (default: any)",
    )
    serve.add_argument(
        "--state-file",
        type=Path,
        default=_env("state_file"),
        help="save the state to this file on shutdown and every --save-interval seconds; load it on start",
    )
    serve.add_argument(
        "--save-interval",
        type=_positive_float,
        default=_env("save_interval", str(DEFAULT_SAVE_INTERVAL_SECONDS)),
        help="seconds between saves of --state-file (default %(default)s)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=_count(1),
        default=_env("max_body_bytes", str(DEFAULT_MAX_BODY_BYTES)),
        help="larger request bodies are refused with 413 (default %(default)s)",
    )
    serve.add_argument(
        "--max-jobs-per-tenant",
        type=_count(1),
        default=_env("max_jobs_per_tenant", str(DEFAULT_MAX_JOBS_PER_TENANT)),
        help="past this, a tenant's oldest finished job is evicted; 429 if none has finished "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--journal-limit",
        type=_count(0),
        default=_env("journal_limit", str(DEFAULT_JOURNAL_LIMIT)),
        help="requests the journal keeps, the oldest evicted first (default %(default)s)",
    )
    serve.add_argument(
        "--file-cache-bytes",
        type=_count(0),
        default=_env("file_cache_bytes", str(DEFAULT_FILE_CACHE_BYTES)),
        help="exported files kept in memory, least recently used evicted first (default %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        type=str.upper,
        default=_env("log_level", "WARNING"),
    )

    scenarios = commands.add_parser("scenarios", help="check and list scenario files")
    scenario_commands = scenarios.add_subparsers(
        dest="scenarios_command", required=True, parser_class=_Parser
    )
    validate = scenario_commands.add_parser("validate", help="validate scenario files or folders")
    validate.add_argument("paths", type=Path, nargs="+")
    listing = scenario_commands.add_parser("list", help="list bundled scenarios (and any given ones)")
    listing.add_argument("--scenarios", type=Path, action="append", default=[])

    commands.add_parser("openapi", help="print the OpenAPI document GET /_emulator/openapi.json serves")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    # argparse runs string defaults (our environment variables) through `type` but not `choices`.
    for flag, value, allowed in (
        ("--clock", args.clock, CLOCKS),
        ("--auth", args.auth, AUTH_MODES),
        ("--validation", args.validation, VALIDATION_MODES),
        ("--log-level", args.log_level, LOG_LEVELS),
    ):
        if value not in allowed:
            fail(f"argument {flag}: invalid choice: '{value}' (choose from {', '.join(allowed)})")
    return Options(
        host=args.host,
        port=args.port,
        scenario_paths=tuple(args.scenarios),
        default_scenario=args.default_scenario,
        seed=args.seed,
        clock=args.clock,
        speed=args.speed,
        start_time_ms=args.start_time,
        auth=args.auth,
        validation=args.validation,
        credentials_file=Path(args.credentials) if args.credentials else None,
        state_file=Path(args.state_file) if args.state_file else None,
        save_interval=args.save_interval,
        log_level=args.log_level,
        max_body_bytes=args.max_body_bytes,
        max_jobs_per_tenant=args.max_jobs_per_tenant,
        journal_limit=args.journal_limit,
        file_cache_bytes=args.file_cache_bytes,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(options_from(args))
    if args.command == "openapi":
        return print_openapi()
    if args.scenarios_command == "validate":
        return validate(args.paths)
    return list_scenarios(args.scenarios)


def serve(options: Options) -> int:
    logging.basicConfig(level=options.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Import the server only now: `scenarios validate` stays light.
    from emulator.backend import Backend

    try:
        backend = Backend(options)
    except ScenarioError as exc:
        fail(str(exc))
    except Exception as exc:  # an unknown default scenario and the like
        fail(getattr(exc, "detail", str(exc)))
    return asyncio.run(_serve(options, backend))


async def _serve(options: Options, backend: Any) -> int:
    from aiohttp import web

    from emulator.app import STATE_SAVER, create_app

    app = create_app(options, backend)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    # Every job lives as long as the server, so the cyclic GC's young collections (every 700 allocations
    # by default) keep promoting, and its full ones keep re-scanning, a heap that only grows: about a fifth
    # of the time of a stream of POSTs. Startup objects are never garbage: freeze them; collect less often.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    site = web.TCPSite(runner, options.host, options.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        fail(f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}")
    host, port = runner.addresses[0][:2]
    shown_host = f"[{host}]" if ":" in host else host
    if not _is_loopback(options.host):
        print(
            f"aep-emulator: warning: listening on {options.host}, reachable from other machines; the "
            "emulator is a test tool: its tokens are not secrets and its control plane (/_emulator) has "
            "no authentication at all",
            file=sys.stderr,
            flush=True,
        )
    # Handlers first: a client may signal as soon as it reads the ready line.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"aep-emulator listening on http://{shown_host}:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()
    saver = app.get(STATE_SAVER)
    if saver is not None and saver.failed:
        print(f"aep-emulator: error: the last save to {saver.path} failed; see the log", file=sys.stderr)
        return 1
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve anywhere


def print_openapi() -> int:
    from emulator.app import ROUTES
    from emulator.openapi import document_bytes

    routes = tuple((method, path) for method, path, _ in ROUTES)
    print(document_bytes(routes).decode())
    return 0


def validate(paths: list[Path]) -> int:
    failures = 0
    for path in paths:
        files = (
            sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
        )
        for file in files:
            try:
                scenario = load_file(file)
            except ScenarioError as exc:
                failures += 1
                print(f"aep-emulator: error: {exc}", file=sys.stderr)
            else:
                print(f"ok {file} ({scenario.name})")
    return EXIT_USAGE if failures else 0


def list_scenarios(paths: list[Path]) -> int:
    try:
        scenarios = bundled() + load_paths(paths)
    except ScenarioError as exc:
        fail(str(exc))
    for scenario in scenarios:
        print(f"{scenario.name}\t{scenario.source}\t{scenario.description}")
    return 0
