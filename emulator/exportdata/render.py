"""A file's bytes: its rows written as Parquet (snappy), or as JSON Lines for a json dataset."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emulator.errors import NotFound
from emulator.exportdata.projection import projected_records
from emulator.exportdata.selection import Plan, file_rows
from emulator.exportdata.spec import JSON_LINES, PARQUET, BatchSpec

CONTENT_TYPES = {
    PARQUET: "application/parquet",  # what Data Access answers for Parquet (Data Access tutorial)
    # JSON Lines has no registered media type; NDJSON's is the one HTTP tooling recognises.
    JSON_LINES: "application/x-ndjson",
}

Convert = Callable[[Any], Any]


def render(spec: BatchSpec, plan: Plan, index: int) -> bytes:
    """The bytes of file `index`: Parquet, or JSON Lines for a dataset whose format is json."""
    try:
        return _render(spec, plan, index)
    finally:
        # Arrow's allocator keeps freed pages for reuse (in the Arrow worker thread's heap, see `worker`);
        # handed back, a large file's working set is not held while it downloads.
        pa.default_memory_pool().release_unused()


def _render(spec: BatchSpec, plan: Plan, index: int) -> bytes:
    chunks = (projected_records(spec, ids) for ids in file_rows(spec, plan, index))
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
