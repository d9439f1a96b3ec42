"""Many concurrent clients against a real server: no job lost or duplicated, ids unique, every list page
consistent (no duplicates, no gaps, in order), and no tenant ever sees another's job.

The server is the real app on a real socket (an aiohttp web runner on 127.0.0.1, port 0) in the test's own
event loop; the clients are separate aiohttp sessions with their own connection pools. Requests interleave
at every await, as they do against `aep-emulator serve`.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulator.app import create_app
from emulator.options import Options
from tests.conftest import PROFILE_UNION, START_MS, aep_headers, assert_matches

JOBS = "/data/core/ups/export/jobs"
DATASETS = "/data/foundation/catalog/dataSets"
TENANTS = [
    ("ORG-A@AdobeOrg", "prod"),
    ("ORG-A@AdobeOrg", "dev"),
    ("ORG-B@AdobeOrg", "prod"),
    ("ORG-C@AdobeOrg", "prod"),
    ("ORG-D@AdobeOrg", "qa"),
]
CLIENTS = 50
ROUNDS = 8  # each round: create, poll twice, sometimes cancel or delete; every other round, list it all
PAGE = 10


@dataclass
class Ledger:
    """What the clients were told, per tenant: the test's record of truth."""

    created: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    deleted: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    # DELETEs sent and not answered yet: the job may or may not be gone.
    deleting: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    requests: int = 0
    walks: int = 0
    pages: int = 0
    checked: set[str] = field(default_factory=set)

    def check(self, schema: str, body: Any) -> None:
        """Every response against its schema; a job in a state checked before is not checked again
        (many walks list the same jobs), so the schema checks do not dominate the test's time."""
        if schema == "export-job.list.response":
            assert_matches(schema, {**body, "records": []})
            for record in body["records"]:
                self.check("export-job.response", record)
            return
        key = schema + json.dumps(body, sort_keys=True)
        if key not in self.checked:
            assert_matches(schema, body)
            self.checked.add(key)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = create_app(Options(clock="manual", start_time_ms=START_MS))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def call(
    session: aiohttp.ClientSession,
    ledger: Ledger,
    method: str,
    url: str,
    schema: str,
    status: int,
    **kwargs: Any,
) -> Any:
    async with session.request(method, url, **kwargs) as response:
        ledger.requests += 1
        body = await response.json()
        assert response.status == status, (method, url, body)
        ledger.check(schema, body)
        return body


async def walk(
    session: aiohttp.ClientSession, ledger: Ledger, base: str, tenant: tuple[str, str]
) -> list[int]:
    """Every page of the tenant's job list, following link.next; checks each page and their order."""
    before = set(ledger.created[tenant])
    gone_before = set(ledger.deleted[tenant])
    url = f"{base}{JOBS}?limit={PAGE}"
    seen: list[int] = []
    keys: list[tuple[int, int]] = []
    while True:
        page = await call(session, ledger, "GET", url, "export-job.list.response", 200)
        ledger.pages += 1
        records = page["records"]
        assert len(records) <= PAGE
        assert page["page"]["pageSize"] == len(records)
        for record in records:
            assert record["imsOrgId"] == tenant[0], record
        seen += [r["id"] for r in records]
        keys += [(r["creationTime"], r["id"]) for r in records]
        if not page["link"]["next"]:
            break
        url = f"{base}/data/core/ups{page['link']['next']}"
    ledger.walks += 1
    assert len(seen) == len(set(seen)), f"a job listed twice in one walk: {seen}"
    assert keys == sorted(keys, reverse=True), "pages out of order"
    # No gaps: every job this tenant had when the walk began, and did not delete during it, is listed.
    uncertain = set(ledger.deleted[tenant]) | ledger.deleting[tenant]
    missing = before - set(seen) - uncertain
    assert not missing, f"jobs missing from the walk: {sorted(missing)}"
    assert not set(seen) & gone_before, "a deleted job was listed"
    return seen


async def client(index: int, base: str, ledger: Ledger, datasets: dict[tuple[str, str], str]) -> None:
    tenant = TENANTS[index % len(TENANTS)]
    headers = aep_headers(*tenant)
    rng = random.Random(index)
    connector = aiohttp.TCPConnector(limit=2)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        for round_ in range(ROUNDS):
            scenario = rng.choice(["success", "stuck", "failure"])
            body = {
                "destination": {"datasetId": datasets[tenant]},
                "schema": {"name": "_xdm.context.profile"},
            }
            job = await call(
                session,
                ledger,
                "POST",
                base + JOBS,
                "export-job.response",
                200,
                json=body,
                headers={"x-emulator-scenario": scenario},
            )
            assert job["imsOrgId"] == tenant[0]
            ledger.created[tenant].append(job["id"])
            for _ in range(2):
                async with session.get(f"{base}{JOBS}/{job['id']}") as response:
                    ledger.requests += 1
                    polled = await response.json()
                    if response.status == 404:
                        # Other clients of the tenant cancelled it, then deleted it, between two polls:
                        # possible whenever a request yields (a SUCCEEDED poll counts off the loop).
                        ledger.check("error.ups", polled)
                        assert job["id"] in ledger.deleted[tenant] | ledger.deleting[tenant], polled
                        break
                    assert response.status == 200, polled
                    ledger.check("export-job.response", polled)
                assert polled["id"] == job["id"]
                assert polled["imsOrgId"] == tenant[0]
            if round_ % 2:
                await walk(session, ledger, base, tenant)
            if rng.random() < 0.4:
                mine = [j for j in ledger.created[tenant] if j not in ledger.deleted[tenant]]
                target = rng.choice(mine)
                # Another client of this tenant may delete it first: then it is a 404, never a 5xx.
                ledger.deleting[tenant].add(target)
                async with session.delete(f"{base}{JOBS}/{target}") as response:
                    ledger.requests += 1
                    answer = await response.json()
                    if response.status == 404:
                        ledger.check("error.ups", answer)
                        assert target in ledger.deleted[tenant] | ledger.deleting[tenant], answer
                        continue
                    assert response.status == 200, answer
                    ledger.check("export-job.cancel.response", answer)
                    if answer["message"] == "Export job has been deleted":
                        ledger.deleted[tenant].add(target)
                ledger.deleting[tenant].discard(target)


async def test_many_concurrent_clients_lose_and_leak_nothing(server: str) -> None:
    ledger = Ledger()
    datasets: dict[tuple[str, str], str] = {}
    async with aiohttp.ClientSession() as setup:
        for tenant in TENANTS:
            body = {
                "name": "concurrency",
                "schemaRef": {"id": PROFILE_UNION, "contentType": "application/json"},
            }
            created = await call(
                setup,
                ledger,
                "POST",
                server + DATASETS,
                "dataset.create.response",
                201,
                json=body,
                headers=aep_headers(*tenant),
            )
            datasets[tenant] = created[0].rsplit("/", 1)[1]
            ledger.created[tenant] = []
            ledger.deleted[tenant] = set()
            ledger.deleting[tenant] = set()

    await asyncio.gather(*(client(i, server, ledger, datasets) for i in range(CLIENTS)))

    all_ids = [job_id for ids in ledger.created.values() for job_id in ids]
    assert len(all_ids) == CLIENTS * ROUNDS
    assert len(set(all_ids)) == len(all_ids), "two creates answered with the same id"
    async with aiohttp.ClientSession() as check:
        for tenant in TENANTS:
            session_headers = aep_headers(*tenant)
            async with aiohttp.ClientSession(headers=session_headers) as session:
                listed = await walk(session, ledger, server, tenant)
            expected = set(ledger.created[tenant]) - ledger.deleted[tenant]
            assert set(listed) == expected, "a job was lost or appeared from nowhere"
            # Another tenant guessing these ids sees nothing, whatever the job's state.
            stranger = aep_headers(*next(t for t in TENANTS if t != tenant))
            for job_id in sorted(ledger.created[tenant])[:20]:
                async with check.get(f"{server}{JOBS}/{job_id}", headers=stranger) as response:
                    assert response.status == 404
                    assert_matches("error.ups", await response.json())
        everything = await call(
            check, ledger, "GET", f"{server}/_emulator/jobs?all=true", "control.jobs.response", 200
        )
        assert len(everything["jobs"]) == sum(
            len(set(ledger.created[t]) - ledger.deleted[t]) for t in TENANTS
        )
    assert ledger.requests > 2000, ledger.requests
    print(
        f"\n{CLIENTS} clients, {ledger.requests} requests, {len(all_ids)} jobs, "
        f"{ledger.walks} list walks over {ledger.pages} pages, "
        f"{sum(len(d) for d in ledger.deleted.values())} deleted"
    )
