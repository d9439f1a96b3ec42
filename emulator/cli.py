"""`aep-emulator serve | scenarios validate | scenarios list | openapi`; serve flags read AEP_EMULATOR_*."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from emulator import __version__, logs
from emulator.cli_flags import FLAGS, SERVE_FLAGS, FlagError, count
from emulator.options import Options
from emulator.scenarios import Scenario, ScenarioError, load_paths, startup_scenarios

EXIT_USAGE = 2
GC_YOUNG_THRESHOLD = 20_000  # container allocations between young collections (Python's default: 700)


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are the one line the contract promises."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def fail(message: str) -> NoReturn:
    print(f"aep-emulator: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_USAGE)


def notice(message: str) -> None:
    print(f"aep-emulator: notice: {message}", file=sys.stderr, flush=True)


# -- value parsers: each raises ArgumentTypeError with the reason, for a flag and a variable alike --------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aep-emulator", description="Emulator of AEP's asynchronous export path.")
    parser.add_argument("--version", action="version", version=f"aep-emulator {__version__}")
    parser.set_defaults(usage=parser.print_help)  # what a command without its subcommand prints
    commands = parser.add_subparsers(dest="command", title="commands", parser_class=_Parser)

    serve = commands.add_parser(
        "serve",
        help="run the emulator",
        description="Run the emulator. Every flag also reads the environment variable named in its help.",
    )
    for flag in SERVE_FLAGS:
        flag.add_to(serve)

    scenarios = commands.add_parser("scenarios", help="check and list scenario files")
    scenarios.set_defaults(usage=scenarios.print_help)
    scenario_commands = scenarios.add_subparsers(
        dest="scenarios_command", title="commands", parser_class=_Parser
    )
    validate = scenario_commands.add_parser(
        "validate", help="validate scenario files or folders, as `serve --scenarios` loads them"
    )
    validate.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    listing = scenario_commands.add_parser(
        "list", help="list the scenarios `serve` would start with: the bundled ones and those in PATH..."
    )
    listing.add_argument("paths", type=Path, nargs="*", metavar="PATH", help="scenario file or folder")
    listing.add_argument("--scenarios", type=Path, action="append", default=[], help="the same, as a flag")

    openapi = commands.add_parser(
        "openapi", help="print the OpenAPI document GET /_emulator/openapi.json serves"
    )
    openapi.add_argument(
        "--indent",
        type=count(0),
        nargs="?",
        const=2,
        metavar="N",
        help="pretty-print, indenting by N spaces (2 when N is left out; default: one line)",
    )
    return parser


def options_from(args: argparse.Namespace) -> Options:
    try:
        value = {dest: flag.resolve(getattr(args, dest)) for dest, flag in FLAGS.items()}
    except FlagError as exc:
        fail(str(exc))
    return Options(
        host=value["host"],
        port=value["port"],
        scenario_paths=tuple(value["scenarios"]),
        default_scenario=value["default_scenario"],
        seed=value["seed"],
        clock=value["clock"],
        speed=value["speed"],
        start_time_ms=value["start_time"],
        auth=value["auth"],
        validation=value["validation"],
        credentials_file=value["credentials"],
        state_file=value["state_file"],
        save_interval=value["save_interval"],
        log_level=value["log_level"],
        log_format=value["log_format"],
        max_body_bytes=value["max_body_bytes"],
        max_jobs_per_tenant=value["max_jobs_per_tenant"],
        max_segment_jobs_processing=value["max_segment_jobs_processing"],
        journal_limit=value["journal_limit"],
        file_cache_bytes=value["file_cache_bytes"],
        max_tenant_bytes=value["max_tenant_bytes"],
        keepalive_timeout=value["keepalive_timeout"],
        body_timeout=value["body_timeout"],
        send_timeout=value["send_timeout"],
    )


def _source(args: argparse.Namespace, dest: str) -> str:
    """Where a serve setting came from, to name it in an error."""
    flag = FLAGS[dest]
    if getattr(args, dest) is not None:
        return f"argument {flag.name}"
    return f"environment variable {flag.env}" if os.environ.get(flag.env) else flag.name


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(build_parser(), argv)
        sys.stdout.flush()  # here, so that a reader gone away is seen below and not at interpreter exit
        return code
    except BrokenPipeError:
        # `aep-emulator openapi | head -c 1`: the reader has what it wanted. Point stdout at /dev/null so
        # that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "openapi":
        return print_openapi(args.indent)
    subcommand = getattr(args, "scenarios_command", None)
    if subcommand == "validate":
        return validate(args.paths)
    if subcommand == "list":
        return list_scenarios([*args.paths, *args.scenarios])
    args.usage()  # `aep-emulator` or `aep-emulator scenarios` alone: the usage, with the commands
    return 0


def serve(args: argparse.Namespace) -> int:
    options = options_from(args)
    logs.configure(options.log_level, options.log_format)
    # Import the server only now: `scenarios validate` stays light.
    from emulator.backend import Backend
    from emulator.errors import BadRequest

    try:
        backend = Backend(options, notice=notice)
    except ScenarioError as exc:
        fail(str(exc))
    except BadRequest as exc:  # the only one a start raises: an unknown default scenario
        fail(f"{_source(args, 'default_scenario')}: {exc.detail}")
    except Exception as exc:  # a bad credentials or state file and the like
        fail(getattr(exc, "detail", str(exc)))
    return asyncio.run(_serve(options, backend))


async def _serve(options: Options, backend: Any) -> int:
    from emulator import runner
    from emulator.app import STATE_SAVER

    try:
        running = await runner.start(options, backend)
    except OSError as exc:
        fail(f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}")
    # Every job lives as long as the server, so the cyclic GC's young collections (every 700 allocations
    # by default) keep promoting, and its full ones keep re-scanning, a heap that only grows: about a fifth
    # of the time of a stream of POSTs. Startup objects are never garbage: freeze them; collect less often.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD)
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
    print(f"aep-emulator listening on {running.url}", flush=True)
    await stop.wait()
    await running.stop()
    saver = running.app.get(STATE_SAVER)
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


def print_openapi(indent: int | None) -> int:
    from emulator.app import ROUTES
    from emulator.openapi import document_bytes

    document = document_bytes(tuple((method, path) for method, path, _ in ROUTES))
    print(document.decode() if indent is None else json.dumps(json.loads(document), indent=indent))
    return 0


def validate(paths: list[Path]) -> int:
    """Each path as `serve --scenarios PATH` loads it (the first problem of each is reported), then all of
    them together, as one `serve` would load them (names must not clash)."""
    failed = False
    for path in paths:
        scenarios = _load(path, partial(load_paths, [path]))
        failed |= scenarios is None
        for scenario in scenarios or []:
            print(f"ok {scenario.source} ({scenario.name})")
    if not failed and len(paths) > 1:
        failed = _load(paths[0], partial(load_paths, paths)) is None
    return EXIT_USAGE if failed else 0


def _load(path: Path, load: Callable[[], list[Scenario]]) -> list[Scenario] | None:
    """`load()`, or None after one error line: whatever is wrong with a file under `path`, a scenario
    author gets a line to act on, never a traceback."""
    try:
        return load()
    except ScenarioError as exc:
        message = str(exc)
    except RecursionError:
        message = f"{path}: the document nests too deeply"
    except Exception as exc:
        message = f"{path}: cannot load: {type(exc).__name__}: {exc}"
    print(f"aep-emulator: error: {message}", file=sys.stderr, flush=True)
    return None


def list_scenarios(paths: list[Path]) -> int:
    scenarios = _load(Path(", ".join(map(str, paths))), partial(startup_scenarios, paths, notice))
    if scenarios is None:
        return EXIT_USAGE
    for scenario in scenarios:
        print(f"{scenario.name}\t{scenario.source}\t{scenario.description}")
    return 0
