"""`emulator.testing`, the test client, outside pytest: standard library only, plain exceptions."""

from __future__ import annotations

import subprocess
import sys
import unittest

import pytest

from emulator.testing import AepEmulator, EmulatorUnreachable, InvalidURL, NoControlPlane


def test_importing_it_needs_neither_pytest_nor_aiohttp() -> None:
    code = (
        "import sys; import emulator.testing; "
        "print(sorted({'pytest', '_pytest', 'aiohttp', 'requests'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_a_server_without_a_control_plane_skips_the_test() -> None:
    emulator = AepEmulator("http://127.0.0.1:1", has_control_plane=False)
    with pytest.raises(NoControlPlane, match=r"has no emulator control plane \(/_emulator\)") as raised:
        emulator.clock.advance(1)
    assert isinstance(raised.value, unittest.SkipTest)  # unittest reports it as a skip, as pytest does


def test_an_unreachable_url() -> None:
    with pytest.raises(EmulatorUnreachable, match=r"cannot reach http://127\.0\.0\.1:1: ") as raised:
        AepEmulator("http://127.0.0.1:1").check_control_plane()
    assert raised.value.url == "http://127.0.0.1:1"


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:8080", "http://"])
def test_not_an_http_url(url: str) -> None:
    with pytest.raises(InvalidURL, match="not an http"):
        AepEmulator(url)
