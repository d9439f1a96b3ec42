"""/data/core/ups/segment/definitions: create, list (paging, sort, filters), get, PATCH, DELETE, bulk-get;
PQL checked when saved; merge policies checked; tenancy."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import DEFAULT_MERGE_POLICY, ORG, OTHER_ORG, START_MS, Aep, assert_matches

DEFINITIONS = "/data/core/ups/segment/definitions"


def definition(
    name: str = "People in Berlin", value: str = 'homeAddress.city = "Berlin"', **fields: Any
) -> Any:
    return {
        "name": name,
        "expression": {"type": "PQL", "format": "pql/text", "value": value},
        "schema": {"name": "_xdm.context.profile"},
        **fields,
    }


async def create(aep: Aep, body: Any, status: int = 200) -> Any:
    schema = "segment-definition.response" if status == 200 else "error.ups"
    return await aep.call("POST", DEFINITIONS, json=body, status=status, schema=schema)


def message(error: Any) -> str:
    return str(next(iter(error["errors"].values()))[0]["message"])


async def test_create_shows_the_documented_fields_with_defaults(
    aep: Aep, client: TestClient[Any, Any]
) -> None:
    response = await client.post(
        DEFINITIONS, json=definition(ttlInDays=30, description="Berliners"), headers=aep.headers()
    )
    created = await response.json()
    assert response.status == 200
    assert_matches("segment-definition.response", created)
    assert response.headers["X-Location"] == f"{DEFINITIONS}/{created['id']}"
    assert created["imsOrgId"] == ORG
    assert created["sandbox"]["sandboxName"] == "prod" and created["sandbox"]["type"] == "production"
    assert created["mergePolicyId"] == DEFAULT_MERGE_POLICY
    assert created["evaluationInfo"] == {
        "batch": {"enabled": True},
        "continuous": {"enabled": False},
        "synchronous": {"enabled": False},
    }
    assert created["dataGovernancePolicy"] == {"excludeOptOut": True}
    assert created["ttlInDays"] == 30 and created["description"] == "Berliners"
    assert created["creationTime"] == created["updateTime"] == START_MS
    assert created["updateEpoch"] == START_MS // 1000
    got = await aep.call(
        "GET", f"{DEFINITIONS}/{created['id']}", status=200, schema="segment-definition.response"
    )
    assert got == created


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("homeAddress.city = ", "line 1, column 20"),
        ('homeAddress.city = "Berlin" and\n(x', "line 2, column 3"),
        ("a ==== b", "line 1, column 4"),
    ],
)
async def test_an_expression_that_does_not_parse_is_a_400_naming_where(
    aep: Aep, value: str, where: str
) -> None:
    error = await create(aep, definition(value=value), status=400)
    assert "$.expression.value" in message(error) and where in message(error)


async def test_pql_json_is_accepted(aep: Aep) -> None:
    value = (
        '{"nodeType":"fnApply","fnName":"=","params":[{"nodeType":"fieldLookup","fieldName":"countryCode",'
        '"object":{"nodeType":"fieldLookup","fieldName":"homeAddress","object":{"nodeType":"parameterReference",'
        '"position":1}}},{"nodeType":"literal","literalType":"String","value":"DE"}]}'
    )
    body = definition(value=value)
    body["expression"]["format"] = "pql/json"
    created = await create(aep, body)
    assert created["expression"]["format"] == "pql/json"
    error = await create(
        aep, {**body, "name": "broken", "expression": {**body["expression"], "value": "{"}}, 400
    )
    assert "pql/json is not valid JSON" in message(error)


async def test_outside_the_subset_is_accepted_and_the_control_plane_says_so(
    aep: Aep, client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    outside = await create(aep, definition("US workers", 'workAddress.country = "US"'))
    evaluated = await create(aep, definition())
    with caplog.at_level("WARNING", logger="emulator.segments"):
        await create(aep, definition("US workers again", 'workAddress.country = "US"'))
        await create(aep, definition("US workers thrice", 'workAddress.country = "US"'))
    warned = [r for r in caplog.records if "outside the PQL subset" in r.getMessage()]
    assert len(warned) <= 1  # once per expression (the first was before capture)
    listed = await (await client.get("/_emulator/segments", params={"org": ORG})).json()
    assert_matches("control.segments.response", listed)
    by_id = {d["id"]: d for d in listed["definitions"]}
    assert by_id[evaluated["id"]]["membership"] == "pql" and "reason" not in by_id[evaluated["id"]]
    assert by_id[outside["id"]]["membership"] == "hash"
    assert "workAddress.country" in by_id[outside["id"]]["reason"]


async def test_names_are_unique_in_a_sandbox(aep: Aep) -> None:
    await create(aep, definition())
    error = await create(aep, definition(), status=422)
    assert error["status"] == 422 and "already exists" in message(error)
    other = Aep(aep.client, OTHER_ORG)
    await create(other, definition())  # another tenant's name space


async def test_merge_policy_ids_are_checked(aep: Aep) -> None:
    error = await create(aep, definition(mergePolicyId="not-a-policy"), status=400)
    assert "merge policy 'not-a-policy' does not exist" in message(error)
    policy = await aep.call(
        "POST",
        "/data/core/ups/config/mergePolicies",
        json={
            "name": "mine",
            "identityGraph": {"type": "none"},
            "attributeMerge": {"type": "timestampOrdered"},
            "schema": {"name": "_xdm.context.profile"},
        },
        status=200,
        schema="merge-policy.response",
    )
    assert (await create(aep, definition(mergePolicyId=policy["id"])))["mergePolicyId"] == policy["id"]


async def test_patch_replaces_what_it_sends(aep: Aep) -> None:
    created = await create(aep, definition())
    await aep.advance(60)
    documented = {  # the documented PATCH sends the whole definition, read-only fields included
        "id": created["id"],
        "name": "People in Hamburg",
        "profileInstanceId": "ups",
        "description": "Last 30 days",
        "expression": {"type": "PQL", "format": "pql/text", "value": 'homeAddress.city = "Hamburg"'},
        "schema": {"name": "_xdm.context.profile"},
        "payloadSchema": "string",
        "creationTime": 0,
        "updateTime": 0,
        "updateEpoch": 0,
    }
    patched = await aep.call(
        "PATCH",
        f"{DEFINITIONS}/{created['id']}",
        json=documented,
        status=200,
        schema="segment-definition.response",
    )
    assert patched["name"] == "People in Hamburg" and patched["expression"]["value"].endswith('"Hamburg"')
    assert patched["creationTime"] == START_MS and patched["updateTime"] == START_MS + 60_000
    assert patched["mergePolicyId"] == DEFAULT_MERGE_POLICY
    only_name = await aep.call(
        "PATCH", f"{DEFINITIONS}/{created['id']}", json={"name": "Renamed"}, status=200, schema=None
    )
    assert only_name["expression"] == patched["expression"]
    for body, words in (
        ({"id": "another"}, "is not"),
        ({"expression": {"type": "PQL", "format": "pql/text", "value": "a ="}}, "line 1"),
        ({"mergePolicyId": "nope"}, "does not exist"),
    ):
        error = await aep.call(
            "PATCH", f"{DEFINITIONS}/{created['id']}", json=body, status=400, schema="error.ups"
        )
        assert words in message(error)
    await aep.call("PATCH", f"{DEFINITIONS}/unknown", json={"name": "x"}, status=404, schema="error.ups")


async def test_delete_then_404(aep: Aep) -> None:
    created = await create(aep, definition())
    deleted = await aep.call(
        "DELETE", f"{DEFINITIONS}/{created['id']}", status=200, schema="segment-definition.delete.response"
    )
    assert deleted["status"] is True
    await aep.call("GET", f"{DEFINITIONS}/{created['id']}", status=404, schema="error.ups")
    await aep.call("DELETE", f"{DEFINITIONS}/{created['id']}", status=404, schema="error.ups")


async def test_list_pages_sorts_and_filters(aep: Aep) -> None:
    ids = []
    for n in range(5):
        streaming = {"continuous": {"enabled": n % 2 == 1}}
        ids.append((await create(aep, definition(f"segment {n}", evaluationInfo=streaming)))["id"])
        await aep.advance(1)

    async def listed(**query: Any) -> Any:
        return await aep.call(
            "GET", DEFINITIONS, params=query, status=200, schema="segment-definition.list.response"
        )

    everything = await listed()
    assert [d["id"] for d in everything["segments"]] == ids[::-1]  # creationTime:desc
    expected = {"totalCount": 5, "totalPages": 1, "sortField": "creationTime", "sort": "desc"}
    assert everything["page"] == {**expected, "pageSize": 5, "limit": 100}
    assert everything["link"] == {}
    first = await listed(limit=2)
    assert [d["id"] for d in first["segments"]] == ids[4:2:-1]
    assert first["page"]["totalPages"] == 3 and first["link"]["next"].startswith(
        "/segment/definitions?start=2"
    )
    assert [d["id"] for d in (await listed(limit=2, page=1))["segments"]] == ids[2:0:-1]  # 0-based pages
    assert [d["id"] for d in (await listed(limit=2, start=4))["segments"]] == ids[:1]
    assert [d["name"] for d in (await listed(sort="name:asc"))["segments"]] == [
        f"segment {n}" for n in range(5)
    ]
    streaming = await listed(**{"evaluationInfo.continuous.enabled": "true"})
    assert {d["id"] for d in streaming["segments"]} == {ids[1], ids[3]}
    assert [d["id"] for d in (await listed(name="segment 2"))["segments"]] == [ids[2]]
    for bad in (
        {"sort": "color:asc"},
        {"limit": "0"},
        {"evaluationInfo.batch.enabled": "maybe"},
        {"page": "-1"},
    ):
        await aep.call("GET", DEFINITIONS, params=bad, status=400, schema="error.ups")


async def test_bulk_get_in_the_documented_and_in_aepps_forms(aep: Aep) -> None:
    one = await create(aep, definition("one"))
    two = await create(aep, definition("two"))
    for body in (
        {"ids": [{"id": one["id"]}, {"id": two["id"]}, {"id": "unknown"}]},
        [one["id"], two["id"], "unknown"],
        [{"id": one["id"]}, {"id": two["id"]}],
    ):
        found = await aep.call(
            "POST",
            f"{DEFINITIONS}/bulk-get",
            json=body,
            status=207,
            schema="segment-definition.bulk-get.response",
        )
        assert set(found["results"]) == {one["id"], two["id"]}
    for bad in ({}, {"ids": []}, [], {"ids": [{"name": "x"}]}):
        await aep.call("POST", f"{DEFINITIONS}/bulk-get", json=bad, status=400, schema="error.ups")


async def test_definitions_are_partitioned_by_tenant(aep: Aep) -> None:
    mine = await create(aep, definition())
    other = Aep(aep.client, OTHER_ORG)
    dev = Aep(aep.client, ORG, "dev")
    for stranger in (other, dev):
        await stranger.call("GET", f"{DEFINITIONS}/{mine['id']}", status=404, schema="error.ups")
        await stranger.call("DELETE", f"{DEFINITIONS}/{mine['id']}", status=404, schema="error.ups")
        await stranger.call(
            "PATCH", f"{DEFINITIONS}/{mine['id']}", json={"name": "x"}, status=404, schema="error.ups"
        )
        listed = await stranger.call(
            "GET", DEFINITIONS, status=200, schema="segment-definition.list.response"
        )
        assert listed["segments"] == []
        found = await stranger.call(
            "POST", f"{DEFINITIONS}/bulk-get", json=[mine["id"]], status=207, schema=None
        )
        assert found["results"] == {}
    dev_definition = await create(dev, definition())
    assert dev_definition["sandbox"] == {
        **dev_definition["sandbox"],
        "sandboxName": "dev",
        "type": "development",
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "x", "schema": {"name": "_xdm.context.profile"}},
        definition(expression={"type": "SQL", "format": "pql/text", "value": "a = 1"}),
        definition(expression={"type": "PQL", "format": "pql/yaml", "value": "a = 1"}),
        definition(expression={"type": "PQL", "format": "pql/text", "value": ""}),
        definition(name=""),
        definition(ttlInDays=0),
        definition(evaluationInfo={"batch": {"enabled": "yes"}}),
        ["not", "an", "object"],
    ],
)
async def test_bad_bodies_are_400_naming_the_path(aep: Aep, body: Any) -> None:
    error = await aep.call("POST", DEFINITIONS, json=body, status=400, schema="error.ups")
    assert "Invalid request body: $" in message(error)


async def test_state_file_keeps_definitions_and_their_rules(aep: Aep, tmp_path: Any) -> None:
    from emulator.backend import Backend
    from emulator.options import Options

    options = Options(clock="manual", start_time_ms=START_MS)
    backend = Backend(options)
    from emulator.store import Tenant

    tenant = Tenant(ORG, "prod")
    made = backend.definitions.create(tenant, definition())
    outside = backend.definitions.create(tenant, definition("out", 'workAddress.country = "US"'))
    state = backend.state()
    again = Backend(options)
    again.restore(state)
    assert again.definitions.get(tenant, made.id).rule == made.rule
    assert not again.definitions.get(tenant, outside.id).rule.evaluated
    document = {
        "format": "aep-emulator-state",
        "version": 2,
        "emulator": "x",
        "compatibility": again.compatibility(),
        "state": state,
    }
    assert again.schemas.first_error("state", document) is None


async def test_reset_forgets_the_audience_of_a_tenant_or_of_all(
    aep: Aep, client: TestClient[Any, Any]
) -> None:
    mine = await create(aep, definition())
    other = Aep(aep.client, OTHER_ORG)
    theirs = await create(other, definition())
    policies = "/data/core/ups/config/mergePolicies"
    body = {"name": "p", "identityGraph": {"type": "none"}, "attributeMerge": {"type": "timestampOrdered"}}
    await aep.call(
        "POST", policies, json={**body, "schema": {"name": "_xdm.context.profile"}}, status=200, schema=None
    )
    assert (await client.post("/_emulator/reset", params={"org": ORG})).status == 200
    await aep.call("GET", f"{DEFINITIONS}/{mine['id']}", status=404, schema="error.ups")
    assert (
        len((await aep.call("GET", policies, status=200, schema=None))["children"]) == 1
    )  # the default again
    await other.call("GET", f"{DEFINITIONS}/{theirs['id']}", status=200, schema=None)
    assert (await client.post("/_emulator/reset")).status == 200
    await other.call("GET", f"{DEFINITIONS}/{theirs['id']}", status=404, schema="error.ups")
