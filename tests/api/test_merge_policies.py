"""/data/core/ups/config/mergePolicies: a default policy per tenant, create, list (filters, paging as aepp
follows it), get, PATCH (JSON Patch), DELETE, bulk-get; and export jobs check `mergePolicy.id`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import DEFAULT_MERGE_POLICY, ORG, OTHER_ORG, START_MS, Aep

POLICIES = "/data/core/ups/config/mergePolicies"


def policy(name: str = "Loyalty members ordered by ID", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "identityGraph": {"type": "none"},
        "attributeMerge": {"type": "dataSetPrecedence", "order": ["5b76f86b85d0e00000be5c8b"]},
        "schema": {"name": "_xdm.context.profile"},
        **fields,
    }


async def create(aep: Aep, body: Any, status: int = 200) -> Any:
    return await aep.call(
        "POST",
        POLICIES,
        json=body,
        status=status,
        schema="merge-policy.response" if status == 200 else "error.ups",
    )


async def listed(aep: Aep, **query: Any) -> Any:
    return await aep.call("GET", POLICIES, params=query, status=200, schema="merge-policy.list.response")


async def test_each_tenant_starts_with_one_default_policy(aep: Aep) -> None:
    page = await listed(aep)
    assert page["_page"] == {"totalCount": 1, "pageSize": 1}
    assert page["_links"] == {"next": {"href": ""}}
    (default,) = page["children"]
    assert default["id"] == DEFAULT_MERGE_POLICY and default["default"] is True
    assert default["imsOrgId"] == ORG and default["version"] == 1
    assert default["schema"] == {"name": "_xdm.context.profile"}
    assert default["attributeMerge"] == {"type": "timestampOrdered"}
    assert default["updateEpoch"] == START_MS // 1000
    other = await listed(Aep(aep.client, OTHER_ORG))
    assert other["children"][0]["id"] != DEFAULT_MERGE_POLICY


async def test_create_get_and_a_new_default_replaces_the_old_one(aep: Aep) -> None:
    created = await create(aep, policy())
    assert created["version"] == 1 and created["default"] is False
    got = await aep.call("GET", f"{POLICIES}/{created['id']}", status=200, schema="merge-policy.response")
    assert got == created
    second = await create(aep, policy("Second", default=True))
    defaults = await listed(aep, default="true")
    assert [p["id"] for p in defaults["children"]] == [second["id"]]
    assert {p["id"] for p in (await listed(aep, default="false"))["children"]} == {
        DEFAULT_MERGE_POLICY,
        created["id"],
    }


async def test_filters_order_and_pages_that_aepp_can_follow(aep: Aep) -> None:
    for n in range(4):
        await create(aep, policy(f"policy {n}", identityGraph={"type": "pdg" if n % 2 else "none"}))
    assert [p["name"] for p in (await listed(aep, orderBy="-name"))["children"]][:2] == [
        "policy 3",
        "policy 2",
    ]
    assert len((await listed(aep, **{"identityGraph.type": "pdg"}))["children"]) == 3  # two, plus the default
    assert len((await listed(aep, **{"attributeMerge.type": "dataSetPrecedence"}))["children"]) == 4
    assert len((await listed(aep, **{"schema.name": "_xdm.context.experienceevent"}))["children"]) == 0
    names: list[str] = []
    query: dict[str, Any] = {"limit": 2}
    while True:  # aepp's getMergePolicies: follow `_links.next.href` until it is ""
        page = await listed(aep, **query)
        names += [p["name"] for p in page["children"]]
        href = page["_links"]["next"]["href"]
        if href == "":
            break
        query = dict(pair.split("=", 1) for pair in href.split("?", 1)[1].split("&"))
    assert names == ["Default Timebased", "policy 0", "policy 1", "policy 2", "policy 3"]
    for bad in ({"limit": "0"}, {"orderBy": "colour"}, {"default": "maybe"}, {"start": "-1"}):
        await aep.call("GET", POLICIES, params=bad, status=400, schema="error.ups")


async def test_patch_with_the_documented_operation_and_a_list(aep: Aep) -> None:
    created = await create(aep, policy())
    await aep.advance(10)
    documented = {"op": "add", "path": "/default", "value": "true"}  # the Profile API's example
    patched = await aep.call(
        "PATCH", f"{POLICIES}/{created['id']}", json=documented, status=200, schema="merge-policy.response"
    )
    assert patched["default"] is True and patched["version"] == 2
    assert patched["updateEpoch"] == START_MS // 1000 + 10
    assert (await aep.call("GET", f"{POLICIES}/{DEFAULT_MERGE_POLICY}", status=200, schema=None))[
        "default"
    ] is False
    ops = [
        {"op": "replace", "path": "/name", "value": "Renamed"},
        {"op": "replace", "path": "/identityGraph.type", "value": "pdg"},
        {"op": "replace", "path": "/attributeMerge.type", "value": "timestampOrdered"},
    ]
    again = await aep.call("PATCH", f"{POLICIES}/{created['id']}", json=ops, status=200, schema=None)
    assert (again["name"], again["identityGraph"]["type"], again["version"]) == ("Renamed", "pdg", 3)
    for bad in (
        {"op": "add", "path": "/colour", "value": "red"},
        {"op": "remove", "path": "/name"},
        {"op": "add", "path": "/identityGraph.type", "value": "full"},
        {"op": "add", "path": "/default", "value": False},  # the default cannot be unset, only replaced
        {"path": "/name", "value": "x"},
    ):
        await aep.call("PATCH", f"{POLICIES}/{created['id']}", json=bad, status=400, schema="error.ups")
    await aep.call("PATCH", f"{POLICIES}/unknown", json=documented, status=404, schema="error.ups")


async def test_delete_but_never_the_default(aep: Aep, client: Any) -> None:
    created = await create(aep, policy())
    response = await client.delete(f"{POLICIES}/{created['id']}", headers=aep.headers())
    assert response.status == 200 and await response.read() == b""  # the Profile API's empty body
    await aep.call("GET", f"{POLICIES}/{created['id']}", status=404, schema="error.ups")
    error = await aep.call("DELETE", f"{POLICIES}/{DEFAULT_MERGE_POLICY}", status=400, schema="error.ups")
    assert "default" in str(error["errors"])


async def test_bulk_get(aep: Aep) -> None:
    created = await create(aep, policy())
    found = await aep.call(
        "POST",
        f"{POLICIES}/bulk-get",
        json={"ids": [{"id": created["id"]}, {"id": DEFAULT_MERGE_POLICY}, {"id": "unknown"}]},
        status=207,
        schema="merge-policy.bulk-get.response",
    )
    assert set(found["results"]) == {created["id"], DEFAULT_MERGE_POLICY}


async def test_policies_are_partitioned_by_tenant(aep: Aep) -> None:
    created = await create(aep, policy())
    other = Aep(aep.client, OTHER_ORG)
    await other.call("GET", f"{POLICIES}/{created['id']}", status=404, schema="error.ups")
    await other.call("GET", f"{POLICIES}/{DEFAULT_MERGE_POLICY}", status=404, schema="error.ups")
    await other.call("DELETE", f"{POLICIES}/{created['id']}", status=404, schema="error.ups")


@pytest.mark.parametrize(
    "body",
    [
        {},
        policy(name=""),
        policy(identityGraph={"type": "full"}),
        policy(attributeMerge={"type": "random"}),
        policy(attributeMerge={"type": "dataSetPrecedence"}),  # needs its order
        policy(default="yes"),
    ],
)
async def test_bad_bodies_are_400(aep: Aep, body: Any) -> None:
    await create(aep, body, status=400)


async def test_exports_and_definitions_name_known_policies_only(aep: Aep) -> None:
    dataset_id = await aep.create_dataset()
    error = await aep.call(
        "POST",
        "/data/core/ups/export/jobs",
        json={
            "destination": {"datasetId": dataset_id},
            "schema": {"name": "_xdm.context.profile"},
            "mergePolicy": {"id": "e5bc94de-cd14-4cdf-a2bc-88b6e8cbfac2", "version": 1},
        },
        status=400,
        schema="error.ups",
    )
    assert "mergePolicy.id: merge policy 'e5bc94de-cd14-4cdf-a2bc-88b6e8cbfac2' does not exist" in str(error)
    created = await create(aep, policy())
    job = await aep.create_job(dataset_id, mergePolicy={"id": created["id"]})
    assert job["mergePolicy"] == {"id": created["id"], "version": 1}
    # Another tenant's policy is unknown here.
    other_default = (await listed(Aep(aep.client, OTHER_ORG)))["children"][0]["id"]
    await aep.call(
        "POST",
        "/data/core/ups/export/jobs",
        json={
            "destination": {"datasetId": dataset_id},
            "schema": {"name": "_xdm.context.profile"},
            "mergePolicy": {"id": other_default},
        },
        status=400,
        schema="error.ups",
    )
