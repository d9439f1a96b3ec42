"""`aep-emulator serve | scenarios validate | scenarios list | openapi`; serve flags read AEP_EMULATOR_*."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from emulator import __version__
from emulator.options import (
    DEFAULT_FILE_CACHE_BYTES,
    DEFAULT_JOURNAL_LIMIT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_JOBS_PER_TENANT,
    DEFAULT_MAX_SEGMENT_JOBS_PROCESSING,
    DEFAULT_SAVE_INTERVAL_SECONDS,
    Options,
)
from emulator.scenarios import Scenario, ScenarioError, load_paths, startup_scenarios
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


def notice(message: str) -> None:
    print(f"aep-emulator: notice: {message}", file=sys.stderr, flush=True)


# -- value parsers: each raises ArgumentTypeError with the reason, for a flag and a variable alike --------


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


def _count(minimum: int | None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: '{text}'") from None
        if minimum is not None and value < minimum:
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


# -- serve's flags: one table, so that the flag, its variable, its default and its help agree ------------


@dataclass(frozen=True)
class Flag:
    name: str
    help: str
    default: Any = None
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    shown: str | None = None  # the default as the help shows it, when str(default) would not say it
    repeat: bool = False  # repeatable; the variable holds paths joined by the OS path separator
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.name[2:].replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        shown = self.shown if self.shown is not None else str(self.default)
        parser.add_argument(
            self.name,
            type=self.parse,
            choices=self.choices,
            action="append" if self.repeat else "store",
            default=None,  # None: not on the command line, so the variable (or the default) decides
            metavar=self.metavar,
            help=f"{self.help} (default: {shown}; env {self.env})".replace("%", "%%"),
        )

    def resolve(self, given: Any) -> Any:
        """The flag's value: the command line's, else the environment variable's, else the default."""
        if given is not None:
            return given
        raw = os.environ.get(self.env, "")
        if not raw:  # unset or empty: an empty variable (as compose files write them) means "not set"
            return self.default
        try:
            value = [self.parse(p) for p in raw.split(os.pathsep) if p] if self.repeat else self.parse(raw)
        except argparse.ArgumentTypeError as exc:
            fail(f"environment variable {self.env}: {exc}")
        if self.choices is not None and value not in self.choices:
            fail(
                f"environment variable {self.env}: invalid choice: '{raw}' "
                f"(choose from {', '.join(self.choices)})"
            )
        return value


SERVE_FLAGS = (
    Flag("--host", "bind address; anything but loopback is reachable from other machines", "127.0.0.1"),
    Flag("--port", "0 picks a free port, named by the ready line", 8080, _port, metavar="PORT"),
    Flag(
        "--scenarios",
        "scenario file or folder, repeatable; a scenario named like a bundled one replaces it",
        [],
        Path,
        shown="none",
        repeat=True,
        metavar="PATH",
    ),
    Flag("--default-scenario", "scenario for jobs nothing else picks one for", "success", metavar="NAME"),
    Flag("--seed", "seed for ids and generated data", 0, _count(None), metavar="INT"),
    Flag("--clock", "real: wall time x --speed; manual: frozen until advanced", "real", choices=CLOCKS),
    Flag("--speed", "real-clock speed factor (60: a minute per second)", 1.0, _positive_float, metavar="X"),
    Flag(
        "--start-time",
        "the clock's start instant, RFC 3339 with an offset",
        None,
        _rfc3339_ms,
        shown="now",
        metavar="RFC3339",
    ),
    Flag(
        "--auth",
        "open: any bearer token; strict: only live tokens minted here, for the client in x-api-key",
        "open",
        choices=AUTH_MODES,
    ),
    Flag(
        "--validation",
        "request bodies that break their schema: refused with 400 (strict), or logged and served where "
        "the emulator can (lenient)",
        "strict",
        choices=VALIDATION_MODES,
    ),
    Flag(
        "--credentials",
        "YAML or JSON file of the client ids, secrets and orgs IMS accepts",
        None,
        Path,
        shown="any client",
        metavar="PATH",
    ),
    Flag(
        "--state-file",
        "save the state there on shutdown and every --save-interval seconds; load it on start",
        None,
        Path,
        shown="none",
        metavar="PATH",
    ),
    Flag(
        "--save-interval",
        "seconds between saves of --state-file",
        DEFAULT_SAVE_INTERVAL_SECONDS,
        _positive_float,
        metavar="SECONDS",
    ),
    Flag(
        "--max-body-bytes",
        "larger request bodies are refused with 413",
        DEFAULT_MAX_BODY_BYTES,
        _count(1),
        metavar="N",
    ),
    Flag(
        "--max-jobs-per-tenant",
        "past this, a tenant's oldest finished job is evicted; 429 if none has finished",
        DEFAULT_MAX_JOBS_PER_TENANT,
        _count(1),
        metavar="N",
    ),
    Flag(
        "--max-segment-jobs-processing",
        "a tenant's live segment jobs past which a new one gets 429 (too many in processing); 0: no limit",
        DEFAULT_MAX_SEGMENT_JOBS_PROCESSING,
        _count(0),
        metavar="N",
    ),
    Flag(
        "--journal-limit",
        "requests the journal keeps, the oldest evicted first",
        DEFAULT_JOURNAL_LIMIT,
        _count(0),
        metavar="N",
    ),
    Flag(
        "--file-cache-bytes",
        "bytes of exported files kept in memory, least recently used evicted first",
        DEFAULT_FILE_CACHE_BYTES,
        _count(0),
        metavar="N",
    ),
    Flag("--log-level", "what the log shows", "WARNING", str.upper, choices=LOG_LEVELS),
)
FLAGS = {flag.dest: flag for flag in SERVE_FLAGS}


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
        type=_count(0),
        nargs="?",
        const=2,
        metavar="N",
        help="pretty-print, indenting by N spaces (2 when N is left out; default: one line)",
    )
    return parser


def options_from(args: argparse.Namespace) -> Options:
    value = {dest: flag.resolve(getattr(args, dest)) for dest, flag in FLAGS.items()}
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
        max_body_bytes=value["max_body_bytes"],
        max_jobs_per_tenant=value["max_jobs_per_tenant"],
        max_segment_jobs_processing=value["max_segment_jobs_processing"],
        journal_limit=value["journal_limit"],
        file_cache_bytes=value["file_cache_bytes"],
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
    logging.basicConfig(level=options.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
