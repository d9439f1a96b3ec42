"""A reset is a boundary: a request that was waiting on a scenario delay when `POST /_emulator/reset` ran
never touches what was created after the reset (a job with the same id), and never enters the new journal.
It answers as its own world now would: that world's job is gone, so 404."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from emulator.api.common import BACKEND
from tests.conftest import Aep, assert_matches

JOBS = "/data/core/ups/export/jobs"
SLOW = """\
name: slow-gateway
steps:
  - status: NEW
  - status: PROCESSING
    after: {polls: 1}
  - status: SUCCEEDED
    after: {polls: 1}
faults:
  - {operation: get_job, times: 1, delay: {seconds: 5}}
  - {operation: cancel_job, times: 1, delay: {seconds: 5}}
"""


class Gate:
    """Stands in for the faults' sleep: a delayed request waits until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.entered.set()
        await self.opened.wait()


@pytest.fixture
def gate(app: web.Application) -> Gate:
    gate = Gate()
    app[BACKEND].faults.sleep = gate.sleep
    return gate


async def job_status(client: TestClient[Any, Any], job_id: str) -> tuple[str, int]:
    """(status, polls counted) from the control plane, which never polls."""
    body = await (await client.get("/_emulator/jobs?all=true")).json()
    (entry,) = [e for e in body["jobs"] if e["job"]["id"] == job_id]
    return entry["job"]["status"], entry["pollsInStep"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("scope", ["all", "tenant"])
async def test_a_request_delayed_across_a_reset_touches_nothing_after_it(
    client: TestClient[Any, Any], aep: Aep, gate: Gate, method: str, scope: str
) -> None:
    assert (await client.post("/_emulator/scenarios", data=SLOW)).status == 201
    old = await aep.create_job(await aep.create_dataset(), headers={"x-emulator-scenario": "slow-gateway"})
    waiting = asyncio.create_task(client.request(method, f"{JOBS}/{old['id']}", headers=aep.headers()))
    await gate.entered.wait()

    reset = "/_emulator/reset" if scope == "all" else f"/_emulator/reset?org={aep.org}&sandbox={aep.sandbox}"
    assert (await client.post(reset)).status == 200
    if scope == "all":
        assert (await client.post("/_emulator/scenarios", data=SLOW)).status == 201
    await client.delete("/_emulator/requests")
    # The next test's job: after a full reset it has the same id as the old one.
    new = await aep.create_job(await aep.create_dataset(), headers={"x-emulator-scenario": "slow-gateway"})
    if scope == "all":
        assert new["id"] == old["id"]
    journal_before = (await (await client.get("/_emulator/requests")).json())["requests"]

    gate.opened.set()
    response = await waiting
    body = await response.json()
    assert response.status == 404, body
    assert_matches("error.ups", body)

    assert await job_status(client, new["id"]) == ("NEW", 0)  # neither polled nor cancelled
    journal_after = (await (await client.get("/_emulator/requests")).json())["requests"]
    assert journal_after == journal_before  # the old request is not in the new journal
    # The new job carries on as if the old request had never been.
    assert (await aep.get_job(new["id"]))["status"] == "PROCESSING"


async def test_a_delayed_request_without_a_reset_is_served_and_journaled(
    client: TestClient[Any, Any], aep: Aep, gate: Gate
) -> None:
    assert (await client.post("/_emulator/scenarios", data=SLOW)).status == 201
    job = await aep.create_job(await aep.create_dataset(), headers={"x-emulator-scenario": "slow-gateway"})
    waiting = asyncio.create_task(client.get(f"{JOBS}/{job['id']}", headers=aep.headers()))
    await gate.entered.wait()
    gate.opened.set()
    assert (await waiting).status == 200
    assert await job_status(client, job["id"]) == ("PROCESSING", 0)
    journal = (await (await client.get("/_emulator/requests?method=GET")).json())["requests"]
    assert [entry["status"] for entry in journal] == [200]


async def test_a_delayed_request_whose_journal_was_cleared_is_not_journaled(
    client: TestClient[Any, Any], aep: Aep, gate: Gate
) -> None:
    assert (await client.post("/_emulator/scenarios", data=SLOW)).status == 201
    job = await aep.create_job(await aep.create_dataset(), headers={"x-emulator-scenario": "slow-gateway"})
    waiting = asyncio.create_task(client.get(f"{JOBS}/{job['id']}", headers=aep.headers()))
    await gate.entered.wait()
    await client.delete("/_emulator/requests")
    gate.opened.set()
    assert (await waiting).status == 200  # no reset: the job is still there, and this was its poll
    assert (await (await client.get("/_emulator/requests")).json())["requests"] == []
