"""Datasets and batches as Catalog shows them, and what a listing's query may name of each."""

from __future__ import annotations

import re
from typing import Any

from emulator.catalog_query import Collection, Range, View
from emulator.errors import BadRequest
from emulator.lifecycle import CANCELLED, FAILED, SUCCEEDED
from emulator.store import Batch, Dataset

# Catalog's lowercase batch status for each export-job status.
BATCH_STATUS = {SUCCEEDED: "success", FAILED: "failed", CANCELLED: "aborted"}
# Batch properties that need the export's data to be counted (or its files written): computed only for
# batches a query needs them of.
MEASURED = frozenset({"recordCount", "failedRecordCount", "metrics", "size"})
DEFAULT_FORMAT = "parquet"

DATASET_PROPERTIES = frozenset(
    {
        "name", "description", "imsOrg", "sandboxName", "version", "created", "updated", "createdClient",
        "createdUser", "updatedUser", "state", "namespace", "viewId", "files", "tags", "classification",
        "schemaRef", "fileDescription", "enableErrorDiagnostics", "observableSchema", "basePath",
        "dataSourceId", "aspect", "schema",
    }
)  # fmt: skip
BATCH_PROPERTIES = frozenset(
    {
        "imsOrg", "status", "created", "updated", "createdClient", "createdUser", "updatedUser", "started",
        "completed", "externalId", "version", "replay", "availableDates", "relatedObjects", "inputFormat",
        "tags", "errors", "recordCount", "failedRecordCount", "size", "metrics",
    }
)  # fmt: skip


def _related(kind: str) -> Any:
    def read(_: str, view: View) -> list[Any]:
        related = view.get("relatedObjects")
        if not isinstance(related, list):
            return []
        return [o.get("id") for o in related if isinstance(o, dict) and o.get("type") == kind]

    return read


# catalog.yaml listDatasets: version, created, updated, createdClient, createdUser, updatedUser, name,
# description, enableErrorDiagnostics (and aepp's getDataSets: state, namespace) are simple filters on the
# properties of those names; so is any other top-level property a dataset shows.
DATASETS = Collection(
    kind="dataSets",
    properties=DATASET_PROPERTIES,
    integers=frozenset({"created", "updated", "dataSourceId"}),
)
# catalog.yaml listBatches: simple filters on the properties of the same names, plus `batch` (the id),
# `dataSet` (the related dataset), the created and availability-date ranges.
BATCHES = Collection(
    kind="batches",
    properties=BATCH_PROPERTIES,
    integers=frozenset(
        {"created", "updated", "started", "completed", "recordCount", "failedRecordCount", "size"}
    ),
    aliases={"batch": lambda object_id, _: [object_id], "dataSet": _related("dataSet")},
    ranges={
        "createdAfter": Range(("created",), ">"),
        "createdBefore": Range(("created",), "<"),
        "startAfter": Range(("availableDates", "startDate"), ">", seconds=True),
        "startBefore": Range(("availableDates", "startDate"), "<", seconds=True),
        "endAfter": Range(("availableDates", "endDate"), ">", seconds=True),
        "endBefore": Range(("availableDates", "endDate"), "<", seconds=True),
    },
)


def batch_status(batch: Batch) -> str:
    return BATCH_STATUS.get(batch.job.progress.status, "processing")


# What an export into a dataset of each `fileDescription.format` writes: Parquet (a Delta table's data files
# are Parquet too; "" means unspecified) or JSON Lines. The other formats of catalog.yaml's enum are accepted
# on datasets, and an export into them is refused when the job is created.
EXPORT_FORMATS = {"": "parquet", "parquet": "parquet", "delta": "parquet", "json": "json"}


def export_format(dataset: Dataset) -> str:
    """`parquet` or `json`: how an export into the dataset is written; a 400 for formats it cannot write."""
    described = dataset.body.get("fileDescription")
    fmt = described.get("format", "") if isinstance(described, dict) else ""
    written = EXPORT_FORMATS.get(fmt.lower()) if isinstance(fmt, str) else None
    if written is None:
        raise BadRequest(
            f"destination.datasetId: dataset '{dataset.id}' has fileDescription.format '{fmt}'; exports are "
            f"written as Parquet or JSON Lines, so the dataset's format must be one of "
            f"{', '.join(repr(f) for f in EXPORT_FORMATS)}"
        )
    return written


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    """A dataset as Catalog shows it (the value under its id)."""
    body = dataset.body
    user = f"{dataset.client_id}@AdobeID"
    tags = dict(body.get("tags", {}))
    # AEP's Query Service registers every dataset as a table; clients (aepp) look for it.
    tags.setdefault("adobe/pqs/table", [_table_name(body.get("name", dataset.id))])
    shown: dict[str, Any] = {
        "name": body.get("name", ""),
        "description": body.get("description", ""),
        "imsOrg": dataset.tenant.org,
        "sandboxName": dataset.tenant.sandbox,
        "version": "1.0.0",
        "created": dataset.created_ms,
        "updated": dataset.created_ms,
        "createdClient": dataset.client_id,
        "createdUser": user,
        "updatedUser": user,
        "state": "DRAFT",
        "namespace": "ACP",
        "viewId": dataset.id,
        "files": f"@/dataSetFiles?dataSetId={dataset.id}",
        "tags": tags,
        "classification": {"dataBehavior": "record", "managedBy": "CUSTOMER"},
        "schemaRef": body.get("schemaRef", {}),
        "fileDescription": body.get("fileDescription", {"persisted": True, "format": DEFAULT_FORMAT}),
        "enableErrorDiagnostics": body.get("enableErrorDiagnostics", False),
        "observableSchema": body.get("observableSchema", {}),
    }
    for optional in ("basePath", "dataSourceId", "aspect", "schema"):
        if optional in body:
            shown[optional] = body[optional]
    return shown


def batch_json(batch: Batch, record_count: int | None, size: int | None = None) -> dict[str, Any]:
    """A batch as Catalog shows it; `record_count` once the export has written it, `size` (bytes of its
    files) when it was asked for."""
    progress = batch.job.progress
    user = f"{batch.client_id}@AdobeID"
    status = batch_status(batch)
    # catalog.yaml: "the Unix timestamp (in seconds)" of the oldest and newest data in the batch: the data of
    # an export is the profiles as of its run, from its start to its end.
    available = {"startDate": progress.created_ms // 1000}
    shown: dict[str, Any] = {
        "imsOrg": batch.tenant.org,
        "status": status,
        "created": progress.created_ms,
        "updated": progress.updated_ms,
        "createdClient": batch.client_id,
        "createdUser": user,
        "updatedUser": user,
        "started": progress.created_ms,
        "externalId": str(batch.job.id),
        "version": "1.0.0",
        "replay": {},
        "availableDates": available,
        "relatedObjects": [{"type": "dataSet", "id": batch.dataset_id}],
        "inputFormat": {"format": "parquet"},
        "tags": {"aep-emulator/exportJobId": [str(batch.job.id)]},
        "errors": [],
    }
    if batch.segment is not None:
        shown["tags"]["aep-emulator/segmentId"] = [batch.segment["segmentId"]]
    if progress.is_terminal:
        shown["completed"] = progress.updated_ms
        available["endDate"] = progress.updated_ms // 1000
    if status == "failed":
        shown["errors"] = [
            {"code": error.code, "description": error.msg, "rows": []} for error in progress.errors
        ]
    if record_count is not None:
        shown["recordCount"] = record_count
        shown["failedRecordCount"] = 0
        shown["metrics"] = {
            "recordsRead": record_count,
            "recordsWritten": record_count,
            "recordsFailed": 0,
            "startTime": progress.created_ms,
            "endTime": progress.updated_ms,
        }
    if size is not None:
        shown["size"] = size
    return shown


def _table_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "dataset"
