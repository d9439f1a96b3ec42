"""A file's first rows as a table of text, for the dashboard's file preview (Parquet or JSON Lines).

Cells are text: a nested value (a struct, a map, a list) is shown as compact JSON. The caller decides how
text is displayed; nothing here is markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from emulator.exportdata.spec import JSON_LINES

DEFAULT_ROWS = 20
MAX_ROWS = 200
MAX_CELL_CHARS = 400
# Objects keyed by data rather than by field name: one column each, as Parquet keeps them (maps).
_WHOLE = frozenset({"identityMap", "segmentMembership"})


@dataclass(frozen=True)
class Preview:
    columns: list[str]
    rows: list[list[str]]  # at most the rows asked for, each with one cell per column
    total_rows: int  # rows in the whole file


def preview(data: bytes, fmt: str, limit: int = DEFAULT_ROWS) -> Preview:
    """The first `limit` (at most MAX_ROWS) rows of a file in `fmt` (parquet or json)."""
    limit = max(1, min(limit, MAX_ROWS))
    if fmt == JSON_LINES:
        return _json_lines(data, limit)
    return _parquet(data, limit)


def _parquet(data: bytes, limit: int) -> Preview:
    parquet = pq.ParquetFile(pa.BufferReader(data))
    batches = []
    taken = 0
    for batch in parquet.iter_batches(batch_size=limit):
        batches.append(batch.slice(0, limit - taken))
        taken += batches[-1].num_rows
        if taken >= limit:
            break
    table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()  # one level of structs a time: person.name.firstName
    records = _pylist(table)
    return Preview(
        list(table.column_names), _cells(list(table.column_names), records), parquet.metadata.num_rows
    )


def _pylist(table: pa.Table) -> list[dict[str, Any]]:
    try:
        rows: list[dict[str, Any]] = table.to_pylist(maps_as_pydicts="lossy")  # pyarrow >= 13
    except TypeError:
        rows = table.to_pylist()
    return rows


def _json_lines(data: bytes, limit: int) -> Preview:
    lines = [line for line in data.split(b"\n") if line.strip()]
    records = [_flat(orjson.loads(line)) for line in lines[:limit]]
    columns: list[str] = []
    for record in records:
        columns.extend(key for key in record if key not in columns)
    return Preview(columns, _cells(columns, records), len(lines))


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted columns (person.name.firstName), like a flattened Parquet file; objects
    whose keys are data (identityMap's namespaces) stay whole."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and name not in _WHOLE:
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _cells(columns: list[str], records: list[dict[str, Any]]) -> list[list[str]]:
    return [[_text(record.get(column)) for column in columns] for record in records]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, date):  # datetime too
        text = value.isoformat()
    elif isinstance(value, int | float):
        text = str(value)
    else:
        text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"
