"""Contract-suite fixtures: `target` is the emulator in process, or (param "aep") a real AEP sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cache

import aiohttp
import pytest

from emulator.app import create_app
from emulator.options import Options
from tests.conftest import START_MS, ClientFactory
from tests.contract.support import AepTarget, Contract, DriftConfig, EmulatorTarget, Target, document

DRIFT_TIMEOUT_SECONDS = 60


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "drift: runs against a real AEP sandbox too, when AEP_DRIFT_* is configured"
    )


@cache
def contract(relaxed: bool = False) -> Contract:
    return Contract(document(), relaxed=relaxed)


@pytest.fixture
async def target(request: pytest.FixtureRequest, aiohttp_client: ClientFactory) -> AsyncIterator[Target]:
    kind = getattr(request, "param", "emulator")
    if kind == "emulator":
        app = create_app(Options(clock="manual", start_time_ms=START_MS))
        emulator = EmulatorTarget(contract(), await aiohttp_client(app), aiohttp_client)
        yield emulator
        return
    config = DriftConfig.from_env()
    if config is None:
        pytest.skip(DriftConfig.skip_reason())
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DRIFT_TIMEOUT_SECONDS)) as session:
        aep = AepTarget(contract(relaxed=True), config, session)
        await aep.token()
        try:
            yield aep
        finally:
            await aep.cleanup()
