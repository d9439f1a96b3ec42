"""The clock stays within 1970..9999: `--speed` is bounded (finite, 0 < speed <= 1,000,000), and an
advance that would pass the end of year 9999 is a 400 that leaves the clock where it was."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.clock import MAX_TIME_MS
from emulator.options import MAX_SPEED
from tests.conftest import Aep, assert_matches
from tests.reliability.conftest import clean_env, json_error, message_of

JOBS = "/data/core/ups/export/jobs"


def refused(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or clean_env(),
    )
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, lines)
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("speed", ["1e308", "1000001", "inf", "nan", "-0", "1e-400"])
def test_an_absurd_speed_is_refused_at_start(speed: str) -> None:
    line = refused("--speed", speed)
    assert "--speed" in line and f"{MAX_SPEED:,.0f}" in line, line


def test_an_absurd_speed_from_the_environment_is_refused_at_start() -> None:
    line = refused(env=clean_env(AEP_EMULATOR_SPEED="1e308"))
    assert "AEP_EMULATOR_SPEED" in line and f"{MAX_SPEED:,.0f}" in line, line  # named as the user set it


async def test_the_clock_cannot_be_advanced_past_year_9999(client: TestClient[Any, Any], aep: Aep) -> None:
    before = await (await client.get("/_emulator/clock")).json()
    ten_years = 315_360_000  # the schema's maximum for one advance
    steps = 0
    while True:
        response = await client.post("/_emulator/clock/advance", json={"seconds": ten_years})
        if response.status != 200:
            break
        steps += 1
        assert steps < 1000
    body = await json_error(response, 400)
    assert "9999-12-31T23:59:59.999Z" in message_of(body)
    now = (await (await client.get("/_emulator/clock")).json())["now"]
    assert before["now"] < now <= MAX_TIME_MS
    # Everything that shows a time still works at the end of time.
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    assert_matches("export-job.response", await aep.get_job(job["id"]))
    assert (await client.get("/_emulator/jobs?all=true")).status == 200
    listed = await client.get(JOBS, headers=aep.headers())
    assert listed.status == 200
