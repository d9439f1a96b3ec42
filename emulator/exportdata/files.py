"""A batch's files as Data Access names them: dataSetFileIds and Spark-style part-file names."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from emulator.errors import NotFound
from emulator.exportdata.spec import PARQUET

_FILE_ID = re.compile(r"^(.+)-([1-9][0-9]{0,8})$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class ExportFile:
    """One file of a batch (a dataSetFile holding exactly one file)."""

    id: str
    index: int
    name: str
    records: int


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
