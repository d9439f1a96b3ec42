"""The test client: drive a running emulator from any test runner (standard library only).

`AepEmulator(url)` mints tokens from the emulated IMS (`headers()`), moves the emulator clock
(`clock.advance(seconds)`), picks scenarios, lists jobs and reads the request journal, all over HTTP, so it
works the same against an in-process server (`emulator.runner.EmulatorServer`), against
`aep-emulator serve --clock manual` in another process, and from the pytest fixture `aep_emulator`.
A call that needs the control plane on a server without one raises `NoControlPlane`, a
`unittest.SkipTest`: unittest and pytest both report the test as skipped.
"""

from emulator.testing.client import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_ORG,
    AepEmulator,
    AepEmulatorError,
    EmulatorClock,
    EmulatorUnreachable,
    NoControlPlane,
)
from emulator.testing.http import InvalidURL

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_ORG",
    "AepEmulator",
    "AepEmulatorError",
    "EmulatorClock",
    "EmulatorUnreachable",
    "InvalidURL",
    "NoControlPlane",
]
