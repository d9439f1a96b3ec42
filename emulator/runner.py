"""Start the app on host:port and stop it cleanly: one way, shared by `aep-emulator serve` and by
`EmulatorServer`, the in-process server of the pytest fixture (and of any other test runner)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from aiohttp import web

from emulator.app import create_app
from emulator.backend import Backend
from emulator.options import Options
from emulator.testing import AepEmulatorError

START_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Running:
    """A listening app: its `url` is the bound address (the real port when asked for port 0)."""

    app: web.Application
    url: str
    _runner: web.AppRunner

    async def stop(self) -> None:
        """Close the listener, let in-flight requests finish (up to the shutdown timeout), run cleanups."""
        await self._runner.cleanup()


async def start(options: Options, backend: Backend, *, shutdown_timeout: float = 1.0) -> Running:
    """Serve a new app for `backend` on `options.host:options.port`; raises OSError when it cannot listen."""
    app = create_app(options, backend)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, options.host, options.port).start()
    except BaseException:
        await runner.cleanup()
        raise
    host, port = runner.addresses[0][:2]
    shown_host = f"[{host}]" if ":" in host else host
    return Running(app, f"http://{shown_host}:{port}", runner)


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
