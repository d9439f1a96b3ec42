"""What an export job wrote: its batches' rows, split into files, and the bytes of each file.

Nothing is materialised ahead of time. A batch's rows are the profiles of the tenant's population that the
job's request selects, in population order. Counting them (for the job's counters and the batch's
`recordCount`) streams over the population block by block and keeps only a count per block; a file is
generated when it is first fetched, from the blocks that hold its rows, and kept in a small LRU cache of
file bytes. Memory therefore depends on the file size, never on the export size.

Every byte is a function of (seed, tenant, scenario's profiles block, job request, file index), so it is
the same in any fetch order and across restarts.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emulator import profiles
from emulator.catalog import Catalog, batch_status
from emulator.errors import BadRequest, NotFound, RangeNotSatisfiable
from emulator.lifecycle import SUCCEEDED
from emulator.options import DEFAULT_FILE_CACHE_BYTES
from emulator.profiles import EventWindow, Population, Segment
from emulator.store import Batch, ExportJob, Tenant
from emulator.timestamps import rfc3339_ms

PARQUET = "parquet"
JSON_LINES = "json"
CONTENT_TYPES = {
    PARQUET: "application/parquet",  # what Data Access answers for Parquet (Data Access tutorial)
    # JSON Lines has no registered media type; NDJSON's is the one HTTP tooling recognises.
    JSON_LINES: "application/x-ndjson",
}
DEFAULT_STATUSES = ("realized", "existing")
SUCCESS = "success"

# Rows are selected this many population indices at a time (the unit of the streaming count).
BLOCK = 32_768
# Rows are generated and written (one Parquet row group each) this many at a time.
CHUNK = 16_384
DEFAULT_CACHE_BYTES = DEFAULT_FILE_CACHE_BYTES  # --file-cache-bytes
_PLAN_CACHE_SIZE = 1024
_JOB_CACHE_SIZE = 4096

Tree = dict[str, "Tree | None"]  # a projection: None keeps the whole field


@dataclass(frozen=True)
class SegmentFilter:
    segment: Segment
    statuses: frozenset[int]


@dataclass(frozen=True)
class Selection:
    """Which profiles of the population a batch holds (the request's `filter`)."""

    segments: tuple[SegmentFilter, ...] = ()
    qualified_from_ms: int | None = None  # segmentQualificationTime.startTime, inclusive
    qualified_to_ms: int | None = None  # segmentQualificationTime.endTime, inclusive
    updated_after_ms: int | None = None  # fromIngestTimestamp, strictly after
    empty_profiles: bool = False
    evaluated: bool = False  # evaluationInfo.segmentation
    # The segments rows show in segmentMembership (the tenant's and the requested ones); a qualification
    # window without segments looks at these.
    shown: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class BatchSpec:
    """Everything that decides a batch's rows and bytes."""

    population: Population
    selection: Selection
    projection: tuple[str, ...] | None
    events: EventWindow | None
    event_projection: tuple[str, ...] | None
    format: str
    max_records_per_file: int


@dataclass(frozen=True)
class Plan:
    """A batch's rows, counted without keeping them: selected rows per population block."""

    block_counts: tuple[int, ...]
    by_namespace: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(self.block_counts)


@dataclass(frozen=True)
class ExportFile:
    """One file of a batch (a dataSetFile holding exactly one file)."""

    id: str
    index: int
    name: str
    records: int


# -- the request -------------------------------------------------------------------------------------


def batch_specs(job: ExportJob, seed: int, dataset_format: str) -> tuple[BatchSpec, ...]:
    """One spec per batch of the job, in `job.batch_ids` order."""
    request = job.request
    scenario = job.scenario
    population = Population(
        seed=seed,
        tenant=f"{job.tenant.org}/{job.tenant.sandbox}",
        count=scenario.profiles.count,
        empty=scenario.profiles.empty_profiles,
        events_per_profile=scenario.profiles.events_per_profile,
    )
    filters = request.get("filter", {})
    requested = tuple(_segment_filter(raw) for raw in filters.get("segments", []))
    shown = _unique(population.base_segments() + tuple(f.segment for f in requested))
    qualification = filters.get("segmentQualificationTime", {})
    evaluated = bool(request.get("evaluationInfo", {}).get("segmentation", False))
    updated_after = _optional_ms(filters.get("fromIngestTimestamp"))
    selection = Selection(
        segments=requested,
        qualified_from_ms=_optional_ms(qualification.get("startTime")),
        qualified_to_ms=_optional_ms(qualification.get("endTime")),
        updated_after_ms=updated_after,
        empty_profiles=bool(filters.get("emptyProfiles", False)),
        evaluated=evaluated,
        shown=shown,
    )
    event_list = request.get("additionalFields", {}).get("eventList")
    events = None
    if event_list is not None:
        window = event_list.get("filter", {})
        # The profile filter's fromIngestTimestamp applies to events too (Segmentation API docs).
        after = [t for t in (updated_after, _optional_ms(window.get("fromIngestTimestamp"))) if t is not None]
        events = EventWindow(max(after) if after else None, _optional_ms(window.get("toIngestTimestamp")))
    spec = BatchSpec(
        population=population,
        selection=selection,
        projection=_paths(request.get("fields")),
        events=events,
        event_projection=_paths(event_list.get("fields")) if event_list else None,
        format=dataset_format,
        max_records_per_file=scenario.max_records_per_file,
    )
    if request["destination"].get("segmentPerBatch"):
        # One batch per requested segment, holding that segment's members only.
        return tuple(replace(spec, selection=replace(selection, segments=(one,))) for one in requested)
    return (spec,)


def _segment_filter(raw: Mapping[str, Any]) -> SegmentFilter:
    statuses = raw.get("status") or DEFAULT_STATUSES
    return SegmentFilter(
        Segment(raw.get("segmentNs") or profiles.DEFAULT_SEGMENT_NS, raw["segmentId"]),
        frozenset(profiles.STATUS_CODES[s] for s in statuses),
    )


def _unique(segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    return tuple(dict.fromkeys(segments))


def _optional_ms(text: str | None) -> int | None:
    """Timestamps were checked when the job was created (jobs.check_timestamps)."""
    return None if text is None else rfc3339_ms(text)


def _paths(fields: str | None) -> tuple[str, ...] | None:
    """`fields` (comma-separated dot paths); None when absent or empty: everything."""
    if not fields:
        return None
    paths = tuple(p.strip() for p in fields.split(",") if p.strip())
    return paths or None


# -- selecting rows ----------------------------------------------------------------------------------


def select(population: Population, selection: Selection, start: int, stop: int) -> pa.Array:
    """The population indices in [start, stop) that the selection keeps, ascending (uint64)."""
    ids = profiles.population_ids(start, stop)
    empty = profiles.empty_mask(population, ids)
    keep = pa.repeat(True, len(ids)) if selection.empty_profiles else pc.invert(empty)
    if selection.updated_after_ms is not None:
        updated = profiles.modify_times_ms(population, ids)
        keep = pc.and_(keep, pc.greater(updated, pa.scalar(selection.updated_after_ms, pa.int64())))
    timed = selection.qualified_from_ms is not None or selection.qualified_to_ms is not None
    if selection.segments:
        keep = pc.and_(keep, _any_membership(population, selection, ids, empty, selection.segments))
    elif timed:
        # A qualification window alone: any membership of the segments the profile is evaluated for.
        everything = frozenset((profiles.REALIZED, profiles.EXISTING, profiles.EXITED))
        shown = tuple(SegmentFilter(s, everything) for s in selection.shown)
        keep = pc.and_(keep, _any_membership(population, selection, ids, empty, shown))
    return pc.filter(ids, keep)


def _any_membership(
    population: Population,
    selection: Selection,
    ids: pa.Array,
    empty: pa.Array,
    filters: Sequence[SegmentFilter],
) -> pa.Array:
    member = pa.repeat(False, len(ids))
    for one in filters:
        code, when = profiles.membership(population, ids, empty, one.segment, evaluated=selection.evaluated)
        matched = pc.is_in(code, value_set=pa.array(sorted(one.statuses), pa.int8()))
        if selection.qualified_from_ms is not None:
            matched = pc.and_(matched, pc.greater_equal(when, selection.qualified_from_ms))
        if selection.qualified_to_ms is not None:
            matched = pc.and_(matched, pc.less_equal(when, selection.qualified_to_ms))
        member = pc.or_(member, matched)
    return member


def make_plan(population: Population, selection: Selection) -> Plan:
    """Count the selected rows block by block (and their identity namespaces), keeping only the counts."""
    counts: list[int] = []
    namespaces = dict.fromkeys(profiles.NAMESPACES, 0)
    for start in range(0, population.size, BLOCK):
        chosen = select(population, selection, start, min(start + BLOCK, population.size))
        counts.append(len(chosen))
        if len(chosen):
            flags = profiles.identity_flags(population, chosen, profiles.empty_mask(population, chosen))
            for namespace, present in flags.items():
                namespaces[namespace] += pc.sum(pc.cast(present, pa.int64())).as_py() or 0
    return Plan(tuple(counts), tuple((ns, n) for ns, n in namespaces.items() if n))


def file_rows(spec: BatchSpec, plan: Plan, index: int) -> Iterator[pa.Array]:
    """The population indices of file `index`'s rows, in chunks of at most CHUNK."""
    first = index * spec.max_records_per_file
    last = min(first + spec.max_records_per_file, plan.total)
    pending: list[pa.Array] = []
    pending_rows = 0
    seen = 0
    for block, count in enumerate(plan.block_counts):
        if seen + count <= first:
            seen += count
            continue
        if seen >= last:
            break
        start = block * BLOCK
        chosen = select(spec.population, spec.selection, start, min(start + BLOCK, spec.population.size))
        wanted = chosen.slice(max(first - seen, 0), last - max(first, seen))
        seen += count
        pending.append(wanted)
        pending_rows += len(wanted)
        while pending_rows >= CHUNK:
            joined = pa.concat_arrays(pending)
            yield joined.slice(0, CHUNK)
            rest = joined.slice(CHUNK)
            pending, pending_rows = [rest], len(rest)
    if pending_rows:
        yield pa.concat_arrays(pending)


# -- projection --------------------------------------------------------------------------------------


def projection_tree(paths: Sequence[str]) -> Tree:
    tree: Tree = {}
    for path in paths:
        node = tree
        parts = path.split(".")
        for depth, part in enumerate(parts):
            if part not in node:
                node[part] = None if depth == len(parts) - 1 else {}
            elif node[part] is None:
                break  # an ancestor is kept whole already
            elif depth == len(parts) - 1:
                node[part] = None
            child = node[part]
            if child is None:
                break
            node = child
    return tree


def project(array: pa.Array, tree: Tree | None) -> pa.Array | None:
    """The parts of `array` that the projection names; None when it names nothing in it."""
    if tree is None:
        return array
    kind = array.type
    if pa.types.is_struct(kind):
        names: list[str] = []
        children: list[pa.Array] = []
        for position in range(kind.num_fields):
            name = kind.field(position).name
            if name in tree:
                child = project(pc.struct_field(array, [position]), tree[name])
                if child is not None:
                    names.append(name)
                    children.append(child)
        if not children:
            return None
        return pa.StructArray.from_arrays(children, names=names, mask=array.is_null())
    if pa.types.is_map(kind):
        # Keys are data (namespaces, segment ids): keep the named ones, and project their values with
        # everything named below any of them.
        values = project(array.items, _merge(tree.values()))
        if values is None:
            return None
        keep = pc.is_in(array.keys, value_set=pa.array(list(tree)))
        kept_before = _offsets_of(keep)
        offsets = pc.take(kept_before, array.offsets)
        return pa.MapArray.from_arrays(
            offsets, pc.filter(array.keys, keep), pc.filter(values, keep), mask=array.is_null()
        )
    if pa.types.is_list(kind):
        values = project(array.values, tree)
        if values is None:
            return None
        return pa.ListArray.from_arrays(array.offsets, values, mask=array.is_null())
    return None  # a path below a scalar names nothing


def _merge(subtrees: Any) -> Tree | None:
    merged: Tree = {}
    for subtree in subtrees:
        if subtree is None:
            return None
        for name, child in subtree.items():
            if name in merged and (merged[name] is None or child is None):
                merged[name] = None
            elif name in merged:
                merged[name] = _merge([merged[name], child])
            else:
                merged[name] = child
    return merged


def _offsets_of(keep: pa.Array) -> pa.Array:
    ends = pc.cumulative_sum(pc.cast(keep, pa.int32()))
    return pa.concat_arrays([pa.array([0], pa.int32()), pc.cast(ends, pa.int32())])


def records(spec: BatchSpec, ids: pa.Array) -> pa.Table:
    """The rows a file shows for these profiles, projected as the request asks.

    `identityMap` is always exported whole (it is the profile's key, and what the job's namespace
    counters count), and an event always keeps its `_id`.
    """
    tree = None if spec.projection is None else projection_tree(spec.projection)
    if tree is not None:
        tree["identityMap"] = None
    columns = None if tree is None else [c for c in profiles.PROFILE_COLUMNS if c in tree]
    if columns is not None and spec.events is not None:
        columns.append(profiles.EVENT_COLUMN)
    table = profiles.profile_records(
        spec.population,
        ids,
        spec.selection.shown,
        evaluated=spec.selection.evaluated,
        events=spec.events,
        columns=columns,
    )
    names: list[str] = []
    arrays: list[pa.Array] = []
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if name == profiles.EVENT_COLUMN:
            kept = _project_events(column, spec.event_projection)
        else:
            kept = project(column, None if tree is None else tree[name])
        if kept is not None:
            names.append(name)
            arrays.append(kept)
    return pa.Table.from_arrays(arrays, names=names)


def _project_events(column: pa.Array, paths: tuple[str, ...] | None) -> pa.Array:
    if paths is None:
        return column
    tree = projection_tree(paths)
    tree["_id"] = None
    projected = project(column, tree)
    assert projected is not None  # `_id` is always there
    return projected


# -- files -------------------------------------------------------------------------------------------


def file_count(spec: BatchSpec, plan: Plan) -> int:
    return -(-plan.total // spec.max_records_per_file)


def render(spec: BatchSpec, plan: Plan, index: int) -> bytes:
    """The bytes of file `index`: Parquet, or JSON Lines for a dataset whose format is json."""
    try:
        return _render(spec, plan, index)
    finally:
        # Arrow's allocator keeps freed pages for reuse; left alone, its footprint creeps up file after
        # file. Handing them back keeps memory flat however many files an export has.
        pa.default_memory_pool().release_unused()


def _render(spec: BatchSpec, plan: Plan, index: int) -> bytes:
    chunks = (records(spec, ids) for ids in file_rows(spec, plan, index))
    if spec.format == JSON_LINES:
        return _json_lines(chunks)
    sink = pa.BufferOutputStream()
    writer: pq.ParquetWriter | None = None
    for table in chunks:
        if writer is None:
            writer = pq.ParquetWriter(sink, table.schema, compression="snappy")
        writer.write_table(table)
    if writer is None:
        raise NotFound(f"File {index} does not exist")
    writer.close()
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _json_lines(chunks: Iterator[pa.Table]) -> bytes:
    out = io.BytesIO()
    for table in chunks:
        columns = [_jsonable(table.column(name).combine_chunks()) for name in table.column_names]
        convert = _converter(
            pa.struct([(n, c.type) for n, c in zip(table.column_names, columns, strict=True)])
        )
        flat = pa.StructArray.from_arrays(columns, names=table.column_names)
        for row in flat.to_pylist():
            out.write(json.dumps(convert(row), ensure_ascii=False, separators=(",", ":")).encode())
            out.write(b"\n")
    return out.getvalue()


def _jsonable(array: pa.Array) -> pa.Array:
    """Timestamps and dates as XDM's JSON strings, computed in Arrow (far cheaper than per value)."""
    kind = array.type
    if pa.types.is_struct(kind):
        children = [_jsonable(pc.struct_field(array, [i])) for i in range(kind.num_fields)]
        names = [kind.field(i).name for i in range(kind.num_fields)]
        return pa.StructArray.from_arrays(children, names=names, mask=array.is_null())
    if pa.types.is_map(kind):
        return pa.MapArray.from_arrays(
            array.offsets, array.keys, _jsonable(array.items), mask=array.is_null()
        )
    if pa.types.is_list(kind):
        return pa.ListArray.from_arrays(array.offsets, _jsonable(array.values), mask=array.is_null())
    if pa.types.is_timestamp(kind):
        return pc.strftime(array, format="%Y-%m-%dT%H:%M:%SZ")  # milliseconds come with %S
    if pa.types.is_date(kind):
        return pc.cast(array, pa.string())
    return array


Convert = Callable[[Any], Any]


def _converter(kind: pa.DataType) -> Convert:
    """`to_pylist` values -> XDM JSON: maps as objects, null fields left out."""
    if pa.types.is_struct(kind):
        fields = [(kind.field(i).name, _converter(kind.field(i).type)) for i in range(kind.num_fields)]
        plain = [name for name, _ in fields]
        if all(_is_leaf(kind.field(i).type) for i in range(kind.num_fields)):
            return lambda v: None if v is None else {n: v[n] for n in plain if v[n] is not None}
        return lambda v: None if v is None else _compact({n: c(v[n]) for n, c in fields})
    if pa.types.is_map(kind):
        value = _converter(kind.item_type)
        return lambda v: None if v is None else {k: value(x) for k, x in v}
    if pa.types.is_list(kind):
        item = _converter(kind.value_type)
        return lambda v: None if v is None else [item(x) for x in v]
    return _same


def _is_leaf(kind: pa.DataType) -> bool:
    return not (pa.types.is_struct(kind) or pa.types.is_map(kind) or pa.types.is_list(kind))


def _same(value: Any) -> Any:
    return value


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v is not None}


# -- ids and names -----------------------------------------------------------------------------------

_FILE_ID = re.compile(r"^(.+)-([1-9][0-9]{0,8})$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def file_id(batch_id: str, index: int) -> str:
    """`<batch id as a UUID>-<n>` (n from 1), the shape Data Access shows; unique per batch file."""
    return f"{_uuid_form(batch_id)}-{index + 1}"


def parse_file_id(value: str) -> tuple[str, int]:
    """(batch id, file index) of a dataSetFileId; 404 for anything we never issued."""
    match = _FILE_ID.match(value)
    if match is None:
        raise NotFound(f"File '{value}' not found.")
    prefix = match.group(1)
    compact = prefix.replace("-", "")
    batch_id = compact if _HEX32.match(compact) and _uuid_form(compact) == prefix else prefix
    return batch_id, int(match.group(2)) - 1


def file_name(batch_id: str, index: int, fmt: str) -> str:
    """Spark's part-file naming, as AEP's data lake shows it."""
    suffix = "snappy.parquet" if fmt == PARQUET else "json"
    return f"part-{index:05d}-{_uuid_form(batch_id)}-c000.{suffix}"


def _uuid_form(batch_id: str) -> str:
    return str(uuid.UUID(hex=batch_id)) if _HEX32.match(batch_id) else batch_id


# -- byte ranges -------------------------------------------------------------------------------------

_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def byte_range(header: str | None, length: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte a `Range` header asks for; None for the whole file.

    One range only: a multi-range request gets the whole file (RFC 9110 lets a server ignore Range).
    Malformed -> 400; a range starting at or beyond the end -> 416.
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        raise BadRequest(f"Invalid Range header '{header}': expected bytes=FIRST-LAST, FIRST- or -SUFFIX")
    parts = spec.split(",")
    parsed = [_RANGE.match(part) for part in parts]
    for match in parsed:
        if match is None or not (match.group(1) or match.group(2)):
            raise BadRequest(f"Invalid Range header '{header}': expected bytes=FIRST-LAST, FIRST- or -SUFFIX")
        if match.group(1) and match.group(2) and int(match.group(2)) < int(match.group(1)):
            raise BadRequest(f"Invalid Range header '{header}': the last byte is before the first")
    if len(parsed) > 1:
        return None
    match = parsed[0]
    assert match is not None
    first_text, last_text = match.group(1), match.group(2)
    unsatisfiable = RangeNotSatisfiable(
        f"Range '{header}' is outside the file's {length} bytes",
        headers={"Content-Range": f"bytes */{length}"},
    )
    if not first_text:
        suffix = int(last_text)
        if suffix == 0 or length == 0:
            raise unsatisfiable
        return max(length - suffix, 0), length - 1
    first = int(first_text)
    if first >= length:
        raise unsatisfiable
    last = min(int(last_text), length - 1) if last_text else length - 1
    return first, last


@dataclass
class _JobExport:
    specs: tuple[BatchSpec, ...]
    counters: tuple[int, dict[str, int]] | None = None


# -- the service -------------------------------------------------------------------------------------


class Exports:
    """Batches' files and their bytes, plus the counters jobs and batches show; caches are bounded."""

    def __init__(self, catalog: Catalog, seed: int, *, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.catalog = catalog
        self.seed = seed
        self.cache_bytes = cache_bytes
        self.reset()

    def reset(self) -> None:
        # Per job (most recently used first out): its batches' specs, and its counters, which every GET
        # of a SUCCEEDED job shows.
        self._jobs: OrderedDict[tuple[Tenant, int], _JobExport] = OrderedDict()
        self._plans: OrderedDict[tuple[Population, Selection], Plan] = OrderedDict()
        self._bytes: OrderedDict[tuple[BatchSpec, int], bytes] = OrderedDict()
        self._cached_bytes = 0
        self.generated_files = 0  # how many files were rendered (not served from the cache)

    # -- counters

    def job_counters(self, job: ExportJob) -> tuple[int, dict[str, int]] | None:
        """Profiles exported and profiles per identity namespace, over all of a SUCCEEDED job's files."""
        if job.progress.status != SUCCEEDED:
            return None
        cached = self._job(job)
        if cached.counters is None:
            total = 0
            by_namespace: dict[str, int] = {}
            for spec in cached.specs:
                plan = self.plan(spec)
                total += plan.total
                for namespace, count in plan.by_namespace:
                    by_namespace[namespace] = by_namespace.get(namespace, 0) + count
            cached.counters = (total, by_namespace)
        return cached.counters

    def record_count(self, batch: Batch) -> int | None:
        """Rows in a `success` batch."""
        if batch_status(batch) != SUCCESS:
            return None
        return self.plan(self.spec(batch)).total

    # -- files

    def batch_files(self, tenant: Tenant, batch_id: str) -> tuple[Batch, list[ExportFile]]:
        """A batch of the tenant (404 otherwise) and its files; none until the batch is `success`."""
        batch = self.catalog.batch(tenant, batch_id)
        if batch_status(batch) != SUCCESS:
            return batch, []
        spec = self.spec(batch)
        plan = self.plan(spec)
        return batch, [self._file(batch, spec, plan, index) for index in range(file_count(spec, plan))]

    def file(self, tenant: Tenant, dataset_file_id: str) -> tuple[Batch, ExportFile]:
        """The tenant's file with this dataSetFileId; 404 for unknown ids and unfinished batches."""
        batch_id, index = parse_file_id(dataset_file_id)
        try:
            batch = self.catalog.batch(tenant, batch_id)
        except NotFound:
            raise NotFound(f"File '{dataset_file_id}' not found.") from None
        if batch_status(batch) == SUCCESS:
            spec = self.spec(batch)
            plan = self.plan(spec)
            if index < file_count(spec, plan):
                return batch, self._file(batch, spec, plan, index)
        raise NotFound(f"File '{dataset_file_id}' not found.")

    def content(self, batch: Batch, export_file: ExportFile) -> bytes:
        """The file's bytes, generated on first fetch and kept in a bounded LRU cache."""
        spec = self.spec(batch)
        key = (spec, export_file.index)
        cached = self._bytes.get(key)
        if cached is not None:
            self._bytes.move_to_end(key)
            return cached
        data = render(spec, self.plan(spec), export_file.index)
        self.generated_files += 1
        if len(data) <= self.cache_bytes:
            self._bytes[key] = data
            self._cached_bytes += len(data)
            while self._cached_bytes > self.cache_bytes:
                _, evicted = self._bytes.popitem(last=False)
                self._cached_bytes -= len(evicted)
        return data

    def content_type(self, batch: Batch) -> str:
        return CONTENT_TYPES[self.spec(batch).format]

    # -- internals

    def specs(self, job: ExportJob) -> tuple[BatchSpec, ...]:
        return self._job(job).specs

    def _job(self, job: ExportJob) -> _JobExport:
        key = (job.tenant, job.id)
        cached = self._jobs.get(key)
        if cached is None:
            cached = self._jobs[key] = _JobExport(batch_specs(job, self.seed, self._format(job)))
            if len(self._jobs) > _JOB_CACHE_SIZE:
                self._jobs.popitem(last=False)
        else:
            self._jobs.move_to_end(key)
        return cached

    def spec(self, batch: Batch) -> BatchSpec:
        return self.specs(batch.job)[batch.job.batch_ids.index(batch.id)]

    def plan(self, spec: BatchSpec) -> Plan:
        # Plans depend on the population and selection only: jobs asking the same share one.
        key = (spec.population, spec.selection)
        plan = self._plans.get(key)
        if plan is None:
            plan = make_plan(spec.population, spec.selection)
            self._plans[key] = plan
            if len(self._plans) > _PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan

    def _format(self, job: ExportJob) -> str:
        state = self.catalog.store.tenants.get(job.tenant)
        dataset = state.datasets.get(job.request["destination"]["datasetId"]) if state else None
        described = dataset.body.get("fileDescription", {}) if dataset else {}
        fmt = described.get("format") if isinstance(described, dict) else None
        return JSON_LINES if isinstance(fmt, str) and fmt.lower() == JSON_LINES else PARQUET

    def _file(self, batch: Batch, spec: BatchSpec, plan: Plan, index: int) -> ExportFile:
        first = index * spec.max_records_per_file
        rows = min(spec.max_records_per_file, plan.total - first)
        return ExportFile(file_id(batch.id, index), index, file_name(batch.id, index, spec.format), rows)
