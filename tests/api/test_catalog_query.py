"""Catalog listing and lookup as Adobe documents them (docs in the reference folder, docs/catalog/):
filter-data.md ("Filter Catalog data using query parameters") and look-up-multiple-objects.md, with the
parameters catalog.yaml lists for listDatasets and listBatches. Each test names the page and section."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import OTHER_ORG, START_MS, Aep

DATASETS = "/data/foundation/catalog/dataSets"
BATCHES = "/data/foundation/catalog/batches"


async def listed(aep: Aep, query: str, path: str = DATASETS) -> dict[str, Any]:
    schema = "dataset.map" if path == DATASETS else "batch.map"
    projected = "properties=" in query
    body: dict[str, Any] = await aep.call(
        "GET",
        f"{path}?{query}" if query else path,
        status=200,
        schema=f"{schema}.projected.response" if projected else f"{schema}.response",
    )
    return body


async def names(aep: Aep, query: str) -> list[str]:
    return [d["name"] for d in (await listed(aep, query)).values()]


async def bad(aep: Aep, query: str, path: str = DATASETS) -> str:
    error = await aep.call("GET", f"{path}?{query}", status=400, schema="error.problem")
    assert error["title"] == "BadRequestError"
    return str(error["detail"])


async def datasets(aep: Aep, *bodies: dict[str, Any], step: float = 1) -> list[str]:
    """One dataset per body, `step` seconds apart (so `created` differs)."""
    ids = []
    for body in bodies:
        ids.append(await aep.create_dataset(**body))
        await aep.advance(step)
    return ids


# -- filter-data.md, "Limit returned objects" ----------------------------------------------------------


@pytest.mark.parametrize("path", [DATASETS, BATCHES])
async def test_default_page_is_20_and_limit_goes_to_100(aep: Aep, path: str) -> None:
    dataset_id = (await datasets(aep, *({"name": f"d{n:03}"} for n in range(105)), step=0))[0]
    for _ in range(104 if path == BATCHES else 0):
        await aep.create_job(dataset_id)
    if path == BATCHES:
        await aep.create_job(dataset_id)
    assert (
        len(await listed(aep, "", path)) == 20
    )  # "the maximum number of objects per response payload is 20"
    assert len(await listed(aep, "start=2", path)) == 20  # "If start is not paired with limit, ... 20"
    assert len(await listed(aep, "limit=100", path)) == 100
    assert (
        len(await listed(aep, "limit=101", path)) == 100
    )  # larger is taken as the maximum (KNOWN_DIFFERENCES)
    assert "limit" in await bad(aep, "limit=0", path)  # "Invalid limit parameters (including limit=0)"


# -- look-up-multiple-objects.md -----------------------------------------------------------------------


async def test_several_datasets_at_once_with_properties(aep: Aep) -> None:
    first, second, third = await datasets(
        aep, {"name": "one"}, {"name": "two", "description": "2"}, {"name": "3"}
    )
    both = await aep.call("GET", f"{DATASETS}/{second},{first}", status=200, schema="dataset.map.response")
    assert list(both) == sorted([first, second])  # keyed by each id, in id order as the page shows
    assert both[first]["name"] == "one" and both[second]["name"] == "two"
    projected = await aep.call(
        "GET",
        f"{DATASETS}/{first},{second},{third}?properties=name,description",
        status=200,
        schema="dataset.map.projected.response",
    )
    assert projected == {
        first: {"name": "one", "description": ""},
        second: {"name": "two", "description": "2"},
        third: {"name": "3", "description": ""},
    }


async def test_several_lookup_skips_unknown_and_other_tenants_ids(aep: Aep) -> None:
    mine = (await datasets(aep, {"name": "mine"}))[0]
    other = Aep(aep.client, org=OTHER_ORG)
    theirs = await other.create_dataset(name="theirs")
    shown = await aep.call(
        "GET", f"{DATASETS}/{mine},{theirs},nosuchid", status=200, schema="dataset.map.response"
    )
    assert list(shown) == [mine]  # another tenant's id is as unknown as an id that never existed
    error = await aep.call("GET", f"{DATASETS}/{theirs},nosuchid", status=404, schema="error.problem")
    assert theirs in error["detail"] and "nosuchid" in error["detail"]
    await aep.call("GET", f"{DATASETS}/{mine},,{mine}", status=400, schema="error.problem")


async def test_several_batches_at_once(aep: Aep) -> None:
    dataset_id = (await datasets(aep, {"name": "target"}))[0]
    first = (await aep.create_job(dataset_id))["destination"]["batchId"]
    second = (await aep.create_job(dataset_id))["destination"]["batchId"]
    both = await aep.call("GET", f"{BATCHES}/{first},{second}", status=200, schema="batch.map.response")
    assert set(both) == {first, second}
    projected = await aep.call(
        "GET",
        f"{BATCHES}/{first},{second}?properties=status",
        status=200,
        schema="batch.map.projected.response",
    )
    assert projected == {first: {"status": "processing"}, second: {"status": "processing"}}
    await aep.call("GET", f"{BATCHES}/nope,other", status=404, schema="error.problem")


async def test_lookup_names_parameters_it_does_not_take(aep: Aep) -> None:
    dataset_id = (await datasets(aep, {"name": "x"}))[0]
    error = await aep.call("GET", f"{DATASETS}/{dataset_id}?name=x", status=400, schema="error.problem")
    assert "'name'" in error["detail"]


# -- filter-data.md, "Sort by property" ------------------------------------------------------------


async def test_order_by_several_properties(aep: Aep) -> None:
    # "orderBy=name,desc:updated": by name, then ties newest first.
    await datasets(
        aep, {"name": "b", "description": "old b"}, {"name": "a"}, {"name": "b", "description": "new b"}
    )
    shown = await listed(aep, "orderBy=name,desc:updated&properties=name,description")
    assert [(d["name"], d["description"]) for d in shown.values()] == [
        ("a", ""),
        ("b", "new b"),
        ("b", "old b"),
    ]
    # catalog.yaml's example "orderBy=asc:created,updated".
    shown = await listed(aep, "orderBy=asc:created,updated&properties=description")
    assert [d["description"] for d in shown.values()] == ["old b", "", "new b"]
    assert "orderBy" in await bad(aep, "orderBy=name,sideways:created")
    assert "orderBy" in await bad(aep, "orderBy=name,")


# -- filter-data.md, "Using simple filters" ------------------------------------------------------------


async def test_simple_filters_negation_and_lists(aep: Aep) -> None:
    await datasets(aep, {"name": "exampleName"}, {"name": "anotherName"}, {"name": "third"})
    assert await names(aep, "name=exampleName") == ["exampleName"]
    assert await names(aep, "name=!exampleName") == ["anotherName", "third"]
    assert await names(aep, "name=exampleName,anotherName") == ["exampleName", "anotherName"]
    assert await names(aep, "name=!exampleName,anotherName") == ["third"]
    # "property" section note: `name` supports `*` wildcards; `**` is a literal asterisk.
    assert await names(aep, "name=*Name") == ["exampleName", "anotherName"]
    assert await names(aep, "name=ex*e") == ["exampleName"]


async def test_documented_dataset_filters(aep: Aep) -> None:
    # catalog.yaml listDatasets: version, created, updated, createdClient, createdUser, updatedUser, name,
    # description, enableErrorDiagnostics.
    ids = await datasets(
        aep, {"name": "a", "description": "kept", "enableErrorDiagnostics": True}, {"name": "b"}
    )
    assert await names(aep, "description=kept") == ["a"]
    assert await names(aep, "enableErrorDiagnostics=true") == ["a"]
    assert await names(aep, "enableErrorDiagnostics=false") == ["b"]
    assert await names(aep, f"created={START_MS}") == ["a"]
    assert await names(aep, f"updated={START_MS + 1000}") == ["b"]
    assert await names(aep, f"created=!{START_MS}") == ["b"]
    assert await names(aep, "createdClient=test-client&createdUser=test-client@AdobeID") == ["a", "b"]
    assert await names(aep, "updatedUser=someone-else") == []
    assert await names(aep, "version=1.0.0") == ["a", "b"]
    assert await names(aep, "state=DRAFT&namespace=ACP") == ["a", "b"]  # aepp getDataSets' filters
    assert len(ids) == 2
    assert "'created'" in await bad(aep, "created=yesterday")


@pytest.mark.parametrize("parameter", ["connectorId", "colour", "offsetX"])
async def test_unknown_filters_are_a_400_naming_them(aep: Aep, parameter: str) -> None:
    # Nothing is silently ignored: a filter the emulator does not know is refused, named.
    detail = await bad(aep, f"{parameter}=1")
    assert f"'{parameter}'" in detail
    detail = await bad(aep, f"{parameter}=1", BATCHES)
    assert f"'{parameter}'" in detail


# -- filter-data.md, "Filter by tag" --------------------------------------------------------------------


async def test_tags_filter(aep: Aep) -> None:
    await datasets(
        aep,
        {"name": "both", "tags": {"sampleTag": ["123456"], "secondTag": ["sample_tag_value"]}},
        {"name": "prefix", "tags": {"sampleTag": ["123999"]}},
        {"name": "second", "tags": {"secondTag": ["x"]}},
        {"name": "none"},
    )
    assert await names(aep, "tags=sampleTag:123456") == ["both"]
    assert await names(aep, "tags=secondTag:*") == ["both", "second"]
    assert await names(aep, "tags=sampleTag:123*") == ["both", "prefix"]
    assert await names(aep, "tags=sampleTag:123456,secondTag:*") == ["both"]  # pairs are ANDed
    assert await names(aep, "tags=sampleTag:12") == []
    assert "tags" in await bad(aep, "tags=sampleTag")


# -- filter-data.md, "Using the property parameter" ----------------------------------------------------


async def test_property_parameter(aep: Aep) -> None:
    await datasets(
        aep,
        {"name": "example one", "schemaRef": {"id": "https://ns.adobe.com/a", "contentType": "x"}},
        {"name": "another", "basePath": "/p"},
        {"name": "example two"},
    )
    assert await names(aep, "property=basePath") == ["another"]  # exists
    assert await names(aep, "property=!basePath") == ["example one", "example two"]  # does not exist
    assert await names(aep, "property=name~^example") == ["example one", "example two"]
    assert await names(aep, "property=name==another") == ["another"]
    assert await names(aep, "property=name!=another") == ["example one", "example two"]
    assert await names(aep, "property=schemaRef.id==https://ns.adobe.com/a") == ["example one"]  # nested
    assert await names(aep, f"property=created>{START_MS}") == ["another", "example two"]
    assert await names(aep, f"property=created>={START_MS + 1000}") == ["another", "example two"]
    assert await names(aep, f"property=created<{START_MS + 1000}") == ["example one"]
    assert await names(aep, f"property=created<={START_MS + 1000}") == ["example one", "another"]
    # Several `property` parameters are ANDed.
    assert await names(aep, "property=name~^example&property=name~two$") == ["example two"]


async def test_property_compares_versions_part_by_part(aep: Aep) -> None:
    # The page's example: `property=version>1.0.3`; every emulator dataset is version 1.0.0.
    await datasets(aep, {"name": "a"})
    assert await names(aep, "property=version>1.0.3") == []
    assert await names(aep, "property=version<1.0.10") == ["a"]
    assert await names(aep, "property=version>=1.0.0") == ["a"]


@pytest.mark.parametrize(
    "expression",
    ["", "!name==x", "name~(", "name~(a)\\1", "==x", "name.~x", "name~" + "a" * 300],
)
async def test_bad_property_expressions_are_400(aep: Aep, expression: str) -> None:
    assert "property" in await bad(aep, f"property={expression}")


async def test_regex_cannot_stall_the_emulator(aep: Aep) -> None:
    # RE2 matches in linear time: a pattern that backtracks exponentially in Python's `re` is harmless.
    await datasets(aep, {"description": "a" * 50_000 + "!"})
    # (`%2B` is `+`, which a query string would read as a space.)
    assert await names(aep, "property=description~^(a%2B)%2B$") == []
    assert await names(aep, "property=description~^(a|aa)%2B!$") == ["export target"]


# -- catalog.yaml listBatches filters ------------------------------------------------------------------


async def finished(aep: Aep, dataset_id: str, **headers: str) -> dict[str, Any]:
    job = await aep.create_job(dataset_id, headers=headers)
    await aep.get_job(job["id"])
    done: dict[str, Any] = await aep.get_job(job["id"])
    return done


async def test_documented_batch_filters(aep: Aep) -> None:
    dataset_id, other_dataset = await datasets(aep, {"name": "target"}, {"name": "other"})
    done = await finished(aep, dataset_id)
    done_batch = done["destination"]["batchId"]
    await aep.advance(10)
    live = (await aep.create_job(other_dataset))["destination"]["batchId"]
    every = await listed(aep, "", BATCHES)
    shown = every[done_batch]

    async def ids(query: str) -> list[str]:
        return list(await listed(aep, query, BATCHES))

    assert await ids(f"batch={done_batch}") == [done_batch]
    assert await ids(f"batch=!{done_batch}") == [live]
    assert await ids(f"dataSet={other_dataset}") == [live]
    assert await ids(f"dataSet={dataset_id},{other_dataset}") == [done_batch, live]
    assert await ids(f"externalId={done['id']}") == [done_batch]
    assert await ids(f"created={shown['created']}") == [done_batch]
    assert await ids(f"updated={shown['updated']}") == [done_batch]
    assert await ids(f"started={shown['started']}") == [done_batch]
    assert await ids(f"completed={shown['completed']}") == [done_batch]
    assert await ids("createdClient=test-client&createdUser=test-client@AdobeID") == [done_batch, live]
    assert await ids("updatedUser=nobody") == []
    assert await ids("version=1.0.0&status=success") == [done_batch]
    assert await ids("status=!success") == [live]
    assert await ids(f"recordCount={shown['recordCount']}") == [done_batch]
    assert await ids("failedRecordCount=0") == [done_batch]
    assert await ids(f"tags=aep-emulator/exportJobId:{done['id']}") == [done_batch]
    assert "'recordCount'" in await bad(aep, "recordCount=many", BATCHES)


async def test_batch_size_filter_and_property(aep: Aep) -> None:
    dataset_id = (await datasets(aep, {"name": "target"}))[0]
    batch_id = (await finished(aep, dataset_id))["destination"]["batchId"]
    sized = await listed(aep, "properties=size,recordCount", BATCHES)
    size = sized[batch_id]["size"]
    assert isinstance(size, int) and size > 0
    # The size is the bytes of the batch's files as Data Access serves them.
    files = await aep.call(
        "GET", f"/data/foundation/export/batches/{batch_id}/files", status=200, schema=None
    )
    total = 0
    for entry in files["data"]:
        file_path = f"/data/foundation/export/files/{entry['dataSetFileId']}"
        listing = await aep.call("GET", file_path, status=200, schema=None)
        total += int(listing["data"][0]["length"])
    assert size == total
    assert list(await listed(aep, f"size={size}", BATCHES)) == [batch_id]
    assert list(await listed(aep, f"size=!{size}", BATCHES)) == []
    assert "size" not in (await listed(aep, "", BATCHES))[batch_id]


async def test_batch_availability_dates_and_their_filters(aep: Aep) -> None:
    dataset_id = (await datasets(aep, {"name": "target"}))[0]
    done = await finished(aep, dataset_id)
    batch_id = done["destination"]["batchId"]
    dates = (await listed(aep, "", BATCHES))[batch_id]["availableDates"]
    assert dates == {"startDate": done["creationTime"] // 1000, "endDate": done["updateTime"] // 1000}
    start, end = dates["startDate"], dates["endDate"]

    async def ids(query: str) -> list[str]:
        return list(await listed(aep, query, BATCHES))

    assert await ids(f"startAfter={start - 1}&startBefore={start + 1}") == [batch_id]
    assert await ids(f"endAfter={end}") == []
    assert await ids(f"endBefore={end + 1}") == [batch_id]
    # A timestamp in milliseconds is read as such (no date in seconds is that large).
    assert await ids(f"startAfter={(start - 1) * 1000}") == [batch_id]
    assert "'startAfter'" in await bad(aep, "startAfter=soon", BATCHES)


# -- Data Access tutorial: GET /data/foundation/catalog/batches/ -----------------------------------------


async def test_batches_with_a_trailing_slash(aep: Aep) -> None:
    dataset_id = (await datasets(aep, {"name": "target"}))[0]
    batch_id = (await aep.create_job(dataset_id))["destination"]["batchId"]
    slash = await aep.call("GET", f"{BATCHES}/?dataSet={dataset_id}", status=200, schema="batch.map.response")
    assert list(slash) == [batch_id]
    assert slash == await listed(aep, f"dataSet={dataset_id}", BATCHES)


async def test_only_catalog_takes_a_repeated_property_parameter(aep: Aep) -> None:
    await aep.call(
        "GET", f"{DATASETS}?property=name&property=!basePath", status=200, schema="dataset.map.response"
    )
    error = await aep.call(
        "GET", "/data/core/ups/export/jobs?property=a&property=b", status=400, schema="error.ups"
    )
    assert "'property'" in error["errors"]["400"][0]["message"]
    assert "'name'" in await bad(aep, "name=a&name=b")
