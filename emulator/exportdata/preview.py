"""A file's first rows as a table of text, for the dashboard's file preview (Parquet or JSON Lines).

Cells are text: a nested value (a struct, a map, a list) is shown as compact JSON. The caller decides how
text is displayed; nothing here is markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from emulator.exportdata.spec import JSON_LINES

DEFAULT_ROWS = 20
MAX_ROWS = 200
MAX_CELL_CHARS = 400


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
    columns = list(parquet.schema_arrow.names)
    records: list[dict[str, Any]] = []
    for batch in parquet.iter_batches(batch_size=limit):
        records.extend(batch.to_pylist())
        if len(records) >= limit:
            break
    return Preview(columns, _cells(columns, records[:limit]), parquet.metadata.num_rows)


def _json_lines(data: bytes, limit: int) -> Preview:
    lines = [line for line in data.split(b"\n") if line.strip()]
    records = [orjson.loads(line) for line in lines[:limit]]
    columns: list[str] = []
    for record in records:
        columns.extend(key for key in record if key not in columns)
    return Preview(columns, _cells(columns, records), len(lines))


def _cells(columns: list[str], records: list[dict[str, Any]]) -> list[list[str]]:
    return [[_text(record.get(column)) for column in columns] for record in records]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"
