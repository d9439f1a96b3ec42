"""Start the app on host:port and stop it cleanly: one way, shared by `aep-emulator serve` and by
`EmulatorServer`, the in-process server of the pytest fixture (and of any other test runner)."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulator.app import DISPATCHER, create_app, server_settings
from emulator.backend import Backend
from emulator.options import Options
from emulator.testing import AepEmulatorError

START_TIMEOUT_SECONDS = 30.0
# Out of descriptors, asyncio logs a traceback each time it retries accept() (every second): one line per
# this many seconds instead, with the count of refusals in between.
ACCEPT_ERROR_LOG_INTERVAL_SECONDS = 60.0
MAX_REAP_INTERVAL_SECONDS = 1.0

log = logging.getLogger("emulator")


@dataclass(frozen=True)
class Running:
    """A listening app: its `url` is the bound address (the real port when asked for port 0)."""

    app: web.Application
    url: str
    _runner: _AppServerRunner
    _reaper: asyncio.Task[None]

    async def stop(self) -> None:
        """Close the listener, let in-flight requests finish (up to the shutdown timeout), run cleanups."""
        self._reaper.cancel()
        await self._runner.cleanup()


async def start(options: Options, backend: Backend, *, shutdown_timeout: float = 1.0) -> Running:
    """Serve a new app for `backend` on `options.host:options.port`; raises OSError when it cannot listen."""
    app = create_app(options, backend)
    _quiet_accept_errors(asyncio.get_running_loop())
    runner = _AppServerRunner(app, options, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, options.host, options.port).start()
    except BaseException:
        await runner.cleanup()
        raise
    host, port = runner.addresses[0][:2]
    shown_host = f"[{host}]" if ":" in host else host
    assert runner.server is not None
    reaper = asyncio.create_task(_reap_stalled_sends(runner.server, options.send_timeout))
    return Running(app, f"http://{shown_host}:{port}", runner, reaper)


class _AppServerRunner(web.ServerRunner):
    """The app's dispatcher on aiohttp's low-level server, with the app's lifecycle around it.

    The dispatcher does its own routing (emulator/api/routing.py), so the Application's router and
    handler chain would only repeat it: served directly, a request costs about 7 us less of CPU (a sixth of
    a bare aiohttp app's whole request; benchmarks/README.md). The app still owns startup, shutdown and
    cleanup, run here in the order aiohttp's AppRunner runs them."""

    def __init__(self, app: web.Application, options: Options, *, shutdown_timeout: float):
        server = web.Server(app[DISPATCHER].handle, access_log=None, **server_settings(options))
        super().__init__(server, handle_signals=False, shutdown_timeout=shutdown_timeout)
        self._app = app

    async def setup(self) -> None:
        self._app.freeze()
        await self._app.startup()
        try:
            await super().setup()
        except BaseException:
            await self._app.cleanup()
            raise

    async def shutdown(self) -> None:
        await self._app.shutdown()  # between the listeners closing and in-flight requests being awaited

    async def cleanup(self) -> None:
        try:
            await super().cleanup()
        finally:
            await self._app.cleanup()


async def _reap_stalled_sends(server: web.Server, timeout: float) -> None:
    """Abort connections whose client has read nothing of a response for `timeout` seconds (--send-timeout).

    aiohttp waits for a client to read as long as it takes, holding the unsent part of a response in memory
    (and a connection closed meanwhile keeps it until it is sent). A connection's write buffer that has not
    changed size since the last look made no progress: past `timeout`, the connection is aborted and its
    buffer freed, in user space and in the kernel."""
    loop = asyncio.get_running_loop()
    interval = min(MAX_REAP_INTERVAL_SECONDS, timeout / 4)
    waiting: dict[Any, tuple[int, float]] = {}  # connection -> (buffered bytes, since when)
    while True:
        await asyncio.sleep(interval)
        now = loop.time()
        still: dict[Any, tuple[int, float]] = {}
        for connection in server.connections:
            transport = connection.transport
            size = transport.get_write_buffer_size() if transport is not None else 0
            if transport is None or not size:
                continue
            seen = waiting.get(connection)
            if seen is None or seen[0] != size:
                still[connection] = (size, now)
            elif now - seen[1] >= timeout:
                log.info("a client read none of %d bytes in %g s (--send-timeout): cut", size, timeout)
                _reset(transport)
            else:
                still[connection] = seen
        waiting = still


def _reset(transport: asyncio.Transport) -> None:
    """Abort with a TCP reset: a plain close would leave the unsent bytes queued in the kernel, and the
    client waiting behind them, until the client reads or TCP gives up."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Out of file descriptors, asyncio stops accepting for a second, then tries again, logging a traceback
    each time; the server itself recovers as soon as connections close (idle ones after
    --keepalive-timeout). Log one line per ACCEPT_ERROR_LOG_INTERVAL_SECONDS instead."""
    previous = loop.get_exception_handler()
    if getattr(previous, "quiets_accept_errors", False):
        return  # a second app on this loop
    last_logged: float | None = None
    refused = 0

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal last_logged, refused
        if not str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        refused += 1
        now = loop.time()
        if last_logged is None or now - last_logged >= ACCEPT_ERROR_LOG_INTERVAL_SECONDS:
            log.warning(
                "cannot accept connections: %s (%d times since the last report); retrying every second",
                context.get("exception"),
                refused,
            )
            last_logged, refused = now, 0

    handle.quiets_accept_errors = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handle)


class EmulatorServer:
    """The emulator on its own event loop in a daemon thread: usable from sync and async clients alike.

    `with EmulatorServer(Options(port=0, clock="manual")) as server:` serves at `server.url` until the
    block ends (or call `start()` and `stop()`).
    """

    def __init__(self, options: Options):
        self.options = options
        self.url = ""
        self.backend: Backend | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="aep-emulator", daemon=True)
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def start(self) -> None:
        """Returns once the server listens; raises AepEmulatorError when it cannot start."""
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            raise AepEmulatorError(f"the emulator did not start within {START_TIMEOUT_SECONDS} s")
        if self._failure is not None:
            raise AepEmulatorError(f"the emulator did not start: {self._failure}") from self._failure

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_SECONDS)

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            running = self._loop.run_until_complete(self._open())
        except BaseException as exc:  # reported to the starting thread by start()
            self._failure = exc
            self._ready.set()
            self._loop.close()
            return
        self.url = running.url
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(running.stop())
            self._loop.close()

    async def _open(self) -> Running:
        self.backend = Backend(self.options)
        return await start(self.options, self.backend, shutdown_timeout=0.5)
