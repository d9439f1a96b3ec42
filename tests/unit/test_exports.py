"""Exports without HTTP: row selection, counting by blocks, files across block boundaries, projection,
rendering (Parquet, JSON Lines), file ids, the bounded caches, and the package's import boundary."""

from __future__ import annotations

import ast
import asyncio
import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emulator.catalog import Catalog
from emulator.clock import Clock
from emulator.errors import NotFound
from emulator.exportdata import ExportFile, Exports
from emulator.exportdata.files import file_id, file_name, parse_file_id
from emulator.exportdata.population import (
    EXISTING,
    EXITED,
    REALIZED,
    EventWindow,
    Population,
    Segment,
    empty_mask,
    membership,
    modify_times_ms,
    population_ids,
)
from emulator.exportdata.projection import exported_namespaces, projection_tree
from emulator.exportdata.render import render
from emulator.exportdata.selection import file_count, file_rows, make_plan, select
from emulator.exportdata.service import DEFAULT_CACHE_BYTES
from emulator.exportdata.spec import JSON_LINES, PARQUET, BatchSpec, SegmentFilter, Selection, batch_specs
from emulator.lifecycle import SUCCEEDED, Progress, Transition
from emulator.scenarios import ProfilesSpec, Scenario
from emulator.store import Batch, Dataset, ExportJob, Store, Tenant
from emulator.timestamps import rfc3339_ms

POPULATION = Population(seed=3, tenant="ORG@AdobeOrg/prod", count=450, empty=50, events_per_profile=(0, 3))
SEGMENT = Segment("ups", "seg-1")
EVERY_STATUS = frozenset((REALIZED, EXISTING, EXITED))
TENANT = Tenant("ORG@AdobeOrg", "prod")


def spec(selection: Selection | None = None, **fields: Any) -> BatchSpec:
    base = BatchSpec(
        population=POPULATION,
        selection=selection or Selection(shown=POPULATION.base_segments()),
        projection=None,
        events=None,
        event_projection=None,
        format=PARQUET,
        max_records_per_file=100,
    )
    return replace(base, **fields)


def selected(selection: Selection, population: Population = POPULATION) -> list[int]:
    result: list[int] = select(population, selection, 0, population.size).to_pylist()
    return result


def read(data: bytes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(data)).to_pylist()
    return rows


# -- the request -------------------------------------------------------------------------------------


def test_selection_defaults_to_every_profile_with_a_profile_record() -> None:
    chosen = selected(Selection())
    empty = empty_mask(POPULATION, population_ids(0, 500)).to_pylist()
    assert chosen == [i for i in range(500) if not empty[i]]
    assert len(selected(Selection(empty_profiles=True))) == 500


def test_segment_filters_keep_members_with_an_allowed_status() -> None:
    ids = population_ids(0, 500)
    code, _ = membership(POPULATION, ids, empty_mask(POPULATION, ids), SEGMENT, evaluated=False)
    codes = code.to_pylist()
    for statuses in ({REALIZED}, {EXITED}, {REALIZED, EXISTING}):
        chosen = selected(Selection(segments=(SegmentFilter(SEGMENT, frozenset(statuses)),)))
        assert chosen == [i for i in range(500) if codes[i] in statuses]
    other = Segment("AAM", "seg-2")
    union = selected(
        Selection(segments=(SegmentFilter(SEGMENT, frozenset({1})), SegmentFilter(other, frozenset({3}))))
    )
    assert set(union) == set(selected(Selection(segments=(SegmentFilter(SEGMENT, frozenset({1})),)))) | set(
        selected(Selection(segments=(SegmentFilter(other, frozenset({3})),)))
    )


def test_qualification_window_and_ingest_time_filter() -> None:
    ids = population_ids(0, 500)
    empty = empty_mask(POPULATION, ids)
    code, when = membership(POPULATION, ids, empty, SEGMENT, evaluated=False)
    low, high = 1_680_000_000_000, 1_690_000_000_000
    timed = Selection(
        segments=(SegmentFilter(SEGMENT, EVERY_STATUS),), qualified_from_ms=low, qualified_to_ms=high
    )
    assert selected(timed) == [
        i
        for i, (c, t) in enumerate(zip(code.to_pylist(), when.to_pylist(), strict=True))
        if c and low <= t <= high
    ]
    updated = modify_times_ms(POPULATION, ids).to_pylist()
    recent = selected(Selection(updated_after_ms=high))
    assert recent == [i for i in range(500) if updated[i] > high and not empty[i].as_py()]
    # A window alone looks at the segments the job shows.
    alone = selected(Selection(qualified_from_ms=low, qualified_to_ms=high, shown=(SEGMENT,)))
    assert alone == selected(timed)


def test_batch_specs_follow_the_request() -> None:
    request = {
        "fields": " person.name , _repo",
        "filter": {
            "segments": [{"segmentId": "a"}, {"segmentId": "b", "segmentNs": "AAM", "status": ["exited"]}],
            "segmentQualificationTime": {
                "startTime": "2023-01-01T00:00:00Z",
                "endTime": "2023-06-01t00:00:00z",
            },
            "fromIngestTimestamp": "2023-02-01T00:00:00+01:00",
            "emptyProfiles": True,
        },
        "additionalFields": {
            "eventList": {
                "fields": "_id",
                "filter": {
                    "fromIngestTimestamp": "2023-01-15T00:00:00Z",
                    "toIngestTimestamp": "2023-03-01 00:00:00Z",
                },
            }
        },
        "evaluationInfo": {"segmentation": True},
        "destination": {"datasetId": "d", "segmentPerBatch": True},
    }
    specs = batch_specs(job(request), seed=3, dataset_format="json")
    assert len(specs) == 2
    first, second = specs
    assert first.selection.segments == (SegmentFilter(Segment("ups", "a"), frozenset({1, 2})),)
    assert second.selection.segments == (SegmentFilter(Segment("AAM", "b"), frozenset({3})),)
    assert first.selection.shown[-2:] == (Segment("ups", "a"), Segment("AAM", "b"))
    assert first.selection.qualified_from_ms == 1_672_531_200_000
    assert first.selection.qualified_to_ms == 1_685_577_600_000
    assert first.selection.updated_after_ms == 1_675_206_000_000
    assert first.selection.empty_profiles and first.selection.evaluated
    assert first.projection == ("person.name", "_repo")
    assert first.event_projection == ("_id",)
    # The profile filter's ingest time is later than the event filter's: it wins.
    assert first.events == EventWindow(1_675_206_000_000, 1_677_628_800_000)
    assert first.format == "json" and first.max_records_per_file == 7
    single = batch_specs(job({"destination": {"datasetId": "d"}}), seed=3, dataset_format="parquet")
    assert len(single) == 1 and single[0].selection == Selection(shown=single[0].population.base_segments())
    assert single[0].population == Population(3, "ORG@AdobeOrg/prod", 30, 4, (1, 2))


# -- counting and files ------------------------------------------------------------------------------


@pytest.mark.parametrize("block,chunk", [(64, 16), (100, 7), (1000, 1000)])
def test_files_hold_the_selected_rows_in_order_across_block_boundaries(
    monkeypatch: pytest.MonkeyPatch, block: int, chunk: int
) -> None:
    monkeypatch.setattr("emulator.exportdata.selection.BLOCK", block)
    monkeypatch.setattr("emulator.exportdata.selection.CHUNK", chunk)
    selection = Selection(segments=(SegmentFilter(SEGMENT, frozenset({1, 2})),), shown=(SEGMENT,))
    plan = make_plan(POPULATION, selection)
    assert len(plan.block_counts) == -(-500 // block)
    expected = selected(selection)
    assert plan.total == len(expected)
    batch = spec(selection, max_records_per_file=37)
    files = [
        [i for ids in file_rows(batch, plan, n) for i in ids.to_pylist()]
        for n in range(file_count(batch, plan))
    ]
    assert [len(f) for f in files[:-1]] == [37] * (len(files) - 1)
    assert [i for f in files for i in f] == expected
    assert all(len(ids) <= chunk for n in range(len(files)) for ids in file_rows(batch, plan, n))


def test_namespace_counters_count_the_identities_of_the_selected_rows() -> None:
    selection = Selection(empty_profiles=True)
    plan = make_plan(POPULATION, selection)
    table = pa.concat_tables(pq.read_table(io.BytesIO(render(spec(selection), plan, n))) for n in range(5))
    counted: dict[str, int] = {}
    for row in table.column("identityMap").to_pylist():
        for namespace, _ in row:
            counted[namespace] = counted.get(namespace, 0) + 1
    assert dict(plan.by_namespace) == counted
    assert plan.total == table.num_rows == 500


def test_render_is_deterministic_and_independent_of_other_files() -> None:
    selection = Selection(shown=(SEGMENT,))
    plan = make_plan(POPULATION, selection)
    batch = spec(selection, events=EventWindow())
    backwards = [render(batch, plan, n) for n in reversed(range(4))][::-1]
    forwards = [render(batch, plan, n) for n in range(4)]
    assert backwards == forwards
    assert (
        read(forwards[1])
        == read(render(spec(selection, events=EventWindow(), max_records_per_file=450), plan, 0))[100:200]
    )


def test_projection_keeps_named_paths_and_filters_map_keys() -> None:
    selection = Selection(shown=(SEGMENT, Segment("AAM", "other")))
    plan = make_plan(POPULATION, selection)
    projected = spec(
        selection,
        projection=("person.name.lastName", "segmentMembership.AAM", "homeAddress.nothing", "unknown.path"),
        events=EventWindow(),
        event_projection=("eventType", "nothing"),
    )
    rows = read(render(projected, plan, 0))
    # Exactly what `fields` names: identityMap only when asked for (Segmentation/Profile docs: `fields`
    # "limits the data fields included in the export to only those provided").
    assert list(rows[0]) == ["person", "segmentMembership", "eventList"]
    assert all(set(r["person"]) == {"name"} and set(r["person"]["name"]) == {"lastName"} for r in rows)
    assert {ns for r in rows for ns, _ in (r["segmentMembership"] or [])} == {"AAM"}
    assert all(set(e) == {"_id", "eventType"} for r in rows for e in r["eventList"])
    with_identities = read(render(spec(selection, projection=("identityMap", "person.name")), plan, 0))
    whole = read(render(spec(selection), plan, 0))
    assert list(with_identities[0]) == ["identityMap", "person"]
    assert [r["identityMap"] for r in with_identities] == [r["identityMap"] for r in whole]


def test_projection_naming_nothing_keeps_rows_with_the_bookkeeping_column() -> None:
    selection = Selection(shown=(SEGMENT,))
    plan = make_plan(POPULATION, selection)
    rows = read(render(spec(selection, projection=("unknown.path", "homeAddress.nothing")), plan, 0))
    whole = read(render(spec(selection), plan, 0))
    assert len(rows) == len(whole) > 0
    assert [list(r) for r in rows] == [["_repo"]] * len(rows)
    assert [r["_repo"] for r in rows] == [r["_repo"] for r in whole]
    lines = render(spec(selection, projection=("unknown",), format=JSON_LINES), plan, 0).decode().splitlines()
    assert len(lines) == len(whole) and all(set(json.loads(line)) == {"_repo"} for line in lines)


@pytest.mark.parametrize(
    ("projection", "shown"),
    [
        (None, None),
        (("person.name",), frozenset()),
        (("identityMap",), None),
        (("identityMap.email", "identityMap.ECID.id"), frozenset({"email", "ECID"})),
        (("identityMap.email.nothing",), frozenset()),
    ],
)
def test_exported_namespaces_follow_the_projection(
    projection: tuple[str, ...] | None, shown: frozenset[str] | None
) -> None:
    assert exported_namespaces(spec(Selection(), projection=projection)) == shown


def test_projection_tree_merges_paths() -> None:
    assert projection_tree(["a.b", "a.c.d", "a", "e.f", "e.f.g"]) == {"a": None, "e": {"f": None}}
    assert projection_tree(["x.y.z", "x.y"]) == {"x": {"y": None}}


def test_json_lines_render_xdm_json_without_nulls() -> None:
    selection = Selection(empty_profiles=True, shown=(SEGMENT,))
    plan = make_plan(POPULATION, selection)
    data = render(spec(selection, format=JSON_LINES, events=EventWindow()), plan, 0)
    lines = [json.loads(line) for line in data.decode().splitlines()]
    parquet = read(render(spec(selection, events=EventWindow()), plan, 0))
    assert len(lines) == 100
    for line, row in zip(lines, parquet, strict=True):
        assert line["identityMap"] == {ns: ids for ns, ids in row["identityMap"]}
        if row["person"] is None:
            assert set(line) == {"identityMap", "eventList"}
            continue
        assert line["person"]["birthDate"] == row["person"]["birthDate"].isoformat()
        assert (
            line["_repo"]["modifyDate"]
            == row["_repo"]["modifyDate"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        )
        assert ("mobilePhone" in line) == (row["mobilePhone"] is not None)


# -- ids and names --------------------------------------------------------------------------------------


def test_file_ids_round_trip_and_unknown_ones_are_404() -> None:
    batch_id = "0123456789abcdef0123456789abcdef"
    assert file_id(batch_id, 0) == "01234567-89ab-cdef-0123-456789abcdef-1"
    assert parse_file_id(file_id(batch_id, 41)) == (batch_id, 41)
    assert parse_file_id("other-batch-3") == ("other-batch", 2)
    assert (
        file_name(batch_id, 2, "parquet")
        == "part-00002-01234567-89ab-cdef-0123-456789abcdef-c000.snappy.parquet"
    )
    assert file_name(batch_id, 0, "json").endswith("-c000.json")
    for bad in ("", "abc", "x-0", "x-01", "-1", "x-1234567890"):
        with pytest.raises(NotFound):
            parse_file_id(bad)


# -- the service and its caches ----------------------------------------------------------------------


def job(request: dict[str, Any], status: str = SUCCEEDED) -> ExportJob:
    scenario = Scenario(
        name="s",
        description="",
        source="test",
        steps=(),
        profiles=ProfilesSpec(count=30, empty_profiles=4, events_per_profile=(1, 2)),
        max_records_per_file=7,
    )
    batches = (
        len(request.get("filter", {}).get("segments", []))
        if request["destination"].get("segmentPerBatch")
        else 1
    )
    return ExportJob(
        id=1,
        tenant=TENANT,
        request=request,
        scenario=scenario,
        request_id="r",
        batch_ids=tuple(f"{n:032x}" for n in range(1, batches + 1)),
        progress=Progress(step=0, polls_in_step=0, transitions=(Transition(status, 1, None),)),
    )


def service(cache_bytes: int = DEFAULT_CACHE_BYTES) -> tuple[Exports, Batch]:
    store = Store()
    catalog = Catalog(store, Clock("manual", start_ms=1), seed=0)
    store.tenant(TENANT).datasets["d"] = Dataset("d", TENANT, 1, {"name": "d"}, "client")
    exported = job({"destination": {"datasetId": "d"}})
    batch = Batch(exported.batch_ids[0], TENANT, "d", exported, None, "client")
    catalog.add_batch(batch)
    return Exports(catalog, seed=0, cache_bytes=cache_bytes), batch


async def files_of(service_: Exports, batch: Batch, tenant: Tenant = TENANT) -> list[ExportFile]:
    return (await service_.batch_files(tenant, batch.id, 0, 1000)).page


async def test_counters_and_files_of_a_succeeded_job_and_nothing_before() -> None:
    service_, batch = service()
    assert service_.job_counters(batch.job) == (
        30,
        dict(make_plan(service_.spec(batch).population, service_.spec(batch).selection).by_namespace),
    )
    assert service_.record_count(batch) == 30
    files = await files_of(service_, batch)
    assert [f.records for f in files] == [7, 7, 7, 7, 2]
    assert service_.generated_files == 0  # listing and counting generate no file
    page = await service_.batch_files(TENANT, batch.id, 3, 10)
    assert page.count == 5 and page.page == files[3:]
    assert (await service_.batch_files(TENANT, batch.id, 10**12, 100)).page == []
    batch.job.progress = Progress(0, 0, (Transition("PROCESSING", 1, None),))
    assert service_.job_counters(batch.job) is None and service_.record_count(batch) is None
    assert await files_of(service_, batch) == []
    with pytest.raises(NotFound):
        await service_.file(TENANT, files[0].id)
    with pytest.raises(NotFound):
        await files_of(service_, batch, Tenant("OTHER", "prod"))


async def test_file_bytes_are_cached_within_a_byte_budget() -> None:
    service_, batch = service()
    files = await files_of(service_, batch)
    sizes = [len(await service_.content(batch, f)) for f in files]
    assert service_.generated_files == 5
    await service_.content(batch, files[0])
    assert service_.generated_files == 5  # cached

    small, batch = service(cache_bytes=sizes[0] + sizes[1] + 10)
    files = await files_of(small, batch)
    for export_file in files:
        await small.content(batch, export_file)
    assert small._cached_bytes <= sizes[0] + sizes[1] + 10
    await small.content(batch, files[-1])
    assert small.generated_files == 5  # the most recent one is still cached
    await small.content(batch, files[0])
    assert small.generated_files == 6  # the oldest was evicted
    assert (await small.meta(batch, files[0])).length == sizes[0]
    assert small.generated_files == 6  # its length is known without rendering it again
    small.reset()
    assert small._cached_bytes == 0 and small.generated_files == 0


async def test_concurrent_fetches_of_one_file_share_one_render() -> None:
    service_, batch = service(cache_bytes=0)  # nothing cached: only sharing avoids a second render
    files = await files_of(service_, batch)
    contents = await asyncio.gather(*(service_.content(batch, files[0]) for _ in range(8)))
    assert len(set(contents)) == 1
    assert service_.generated_files == 1


async def test_the_dataset_format_decides_json_lines() -> None:
    service_, batch = service()
    assert service_.content_type(batch) == "application/parquet"
    service_.catalog.store.tenant(TENANT).datasets["d"].body["fileDescription"] = {"format": "JSON"}
    service_.reset()
    assert service_.content_type(batch) == "application/x-ndjson"
    files = await files_of(service_, batch)
    assert files[0].name.endswith(".json")
    assert len((await service_.content(batch, files[0])).decode().splitlines()) == 7


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2018-01-01T00:00:00Z", 1_514_764_800_000),
        ("2023-06-01t00:00:00z", 1_685_577_600_000),
        ("2023-02-01T00:00:00+01:00", 1_675_206_000_000),
        ("1999-12-31 23:59:59.1239-05:30", 946_704_599_123),
        ("2024-02-29T12:00:00.5Z", 1_709_208_000_500),
        ("1600-03-01T00:00:00Z", -11_670_912_000_000),
    ],
)
def test_request_timestamps_become_epoch_milliseconds(text: str, expected: int) -> None:
    assert rfc3339_ms(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2018-02-29T00:00:00Z", "2018-01-01T24:00:00Z", "2018-13-01T00:00:00Z", "2018-01-01T00:00:00"],
)
def test_impossible_or_offsetless_timestamps_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        rfc3339_ms(text)


# -- the package boundary ----------------------------------------------------------------------------


def test_only_exportdata_imports_pyarrow_and_faker() -> None:
    package = Path(__file__).parents[2] / "emulator"
    importers = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(name.split(".")[0] in ("pyarrow", "faker") for name in names):
                importers.add(source.relative_to(package).parts[0])
    assert importers == {"exportdata"}


def test_starting_the_app_imports_neither_pyarrow_nor_faker() -> None:
    """Loaded on the first export request (Backend.exports): at startup they double the cold start."""
    code = (
        "import sys; from emulator.app import create_app; create_app(); "
        "assert not {'pyarrow', 'faker', 'emulator.exportdata'} & set(sys.modules), 'imported at start'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_projection_of_paths_deeper_than_any_data_names_nothing() -> None:
    """Two 1,000-level paths under segmentMembership (issue 12, finding 9): the file renders, without the
    paths' field. A job created before the cap on `fields`, or restored from a state file, still works."""
    # Under two map keys, so that projecting the map's values merges the two 998-level subtrees.
    deep = ("segmentMembership.ups" + ".a" * 997 + ".b", "segmentMembership.other" + ".a" * 997 + ".c")
    projected = spec(projection=(*deep, "person.name"))
    rows = read(render(projected, make_plan(projected.population, projected.selection), 0))
    assert rows and all(set(row) == {"person"} for row in rows)
