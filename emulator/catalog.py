"""Catalog Service domain: datasets and the batches export jobs write into them."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from emulator.budget import TenantBudget
from emulator.clock import Clock
from emulator.errors import BadRequest, NotFound
from emulator.lifecycle import CANCELLED, FAILED, SUCCEEDED
from emulator.params import int_param, optional_int
from emulator.store import (
    Batch,
    Dataset,
    ExportJob,
    Store,
    Tenant,
    batch_from_state,
    batch_state,
    dataset_from_state,
    dataset_state,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
_ORDER_BY = re.compile(r"^(?:(asc|desc):)?([A-Za-z]+)$")

# Catalog's lowercase batch status for each export-job status.
BATCH_STATUS = {SUCCEEDED: "success", FAILED: "failed", CANCELLED: "aborted"}


class Catalog:
    def __init__(self, store: Store, clock: Clock, seed: int, budget: TenantBudget | None = None):
        self.store = store
        self.clock = clock
        self.budget = budget or TenantBudget()
        self._seed = seed
        self.reset_ids()

    def reset_ids(self) -> None:
        self._ids = random.Random(f"catalog-ids-{self._seed}")

    def new_id(self, hex_chars: int = 24) -> str:
        return f"{self._ids.getrandbits(hex_chars * 4):0{hex_chars}x}"

    # -- datasets -------------------------------------------------------------------------------

    def create_dataset(self, tenant: Tenant, body: dict[str, Any], client_id: str) -> Dataset:
        dataset = Dataset(self.new_id(), tenant, self.clock.now_ms(), body, client_id)
        self.budget.hold(tenant, dataset, body)
        self.store.tenant(tenant).datasets[dataset.id] = dataset
        return dataset

    def dataset(self, tenant: Tenant, dataset_id: str) -> Dataset:
        state = self.store.tenants.get(tenant)
        dataset = state.datasets.get(dataset_id) if state else None
        if dataset is None:
            raise NotFound(f"DataSet '{dataset_id}' not found.")
        return dataset

    def datasets(self, tenant: Tenant, query: Mapping[str, str]) -> list[Dataset]:
        state = self.store.tenants.get(tenant)
        found: Iterable[Dataset] = state.datasets.values() if state else ()
        if "name" in query:
            found = [d for d in found if d.body.get("name") == query["name"]]
        return _page(found, query, DATASET_ORDER)

    # -- batches --------------------------------------------------------------------------------

    def add_batch(self, batch: Batch) -> None:
        self.store.tenant(batch.tenant).batches[batch.id] = batch

    def batch(self, tenant: Tenant, batch_id: str) -> Batch:
        state = self.store.tenants.get(tenant)
        batch = state.batches.get(batch_id) if state else None
        if batch is not None:
            batch.job.refresh(self.clock.now_ms())
        if batch is None or not is_visible(batch):
            raise NotFound(f"Batch '{batch_id}' not found.")
        return batch

    def batches(self, tenant: Tenant, query: Mapping[str, str]) -> list[Batch]:
        state = self.store.tenants.get(tenant)
        candidates = list(state.batches.values()) if state else []
        for batch in candidates:
            batch.job.refresh(self.clock.now_ms())
        found = [b for b in candidates if is_visible(b)]
        if "dataSet" in query:
            found = [b for b in found if b.dataset_id == query["dataSet"]]
        if "status" in query:
            found = [b for b in found if batch_status(b) == query["status"]]
        after = optional_int(query, "createdAfter")
        before = optional_int(query, "createdBefore")
        if after is not None:
            found = [b for b in found if b.job.progress.created_ms > after]
        if before is not None:
            found = [b for b in found if b.job.progress.created_ms < before]
        return _page(found, query, BATCH_ORDER)

    # -- state file (emulator/persistence.py) ---------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Every tenant's datasets and batches (deleted jobs' batches too: they stay), the id generator."""
        version, internal, gauss = self._ids.getstate()
        return {
            "ids": [version, list(internal), gauss],
            "tenants": [
                {
                    "org": tenant.org,
                    "sandbox": tenant.sandbox,
                    "datasets": [dataset_state(d) for d in state.datasets.values()],
                    "batches": [batch_state(b) for b in state.batches.values()],
                }
                for tenant, state in self.store.tenants.items()
                if state.datasets or state.batches
            ],
        }

    def restore(self, state: Mapping[str, Any], jobs: Mapping[int, ExportJob]) -> Callable[[], None]:
        """Check a saved `state()` whose batches belong to `jobs`; the returned commit puts it in place (it
        cannot fail) into a store the jobs were restored to."""
        version, internal, gauss = state["ids"]
        ids = random.Random()
        ids.setstate((int(version), tuple(int(n) for n in internal), gauss))  # raises here, not in commit
        tenants: dict[Tenant, tuple[dict[str, Dataset], dict[str, Batch]]] = {}
        for saved in state["tenants"]:
            tenant = Tenant(str(saved["org"]), str(saved["sandbox"]))
            if tenant in tenants:
                raise ValueError(f"tenant {tenant} appears twice")
            datasets = [dataset_from_state(tenant, d) for d in saved["datasets"]]
            batches = [batch_from_state(tenant, b, jobs) for b in saved["batches"]]
            tenants[tenant] = ({d.id: d for d in datasets}, {b.id: b for b in batches})
        for batch_or_job, tenant, dataset_id in (
            *(
                (f"batch {b.id}", b.tenant, b.dataset_id)
                for _, found in tenants.values()
                for b in found.values()
            ),
            *((f"job {j.id}", j.tenant, j.request["destination"]["datasetId"]) for j in jobs.values()),
        ):
            if dataset_id not in tenants.get(tenant, ({}, {}))[0]:
                raise ValueError(f"{batch_or_job}: no dataset {dataset_id} in its tenant")

        def commit() -> None:
            self._ids = ids
            for tenant, (datasets, batches) in tenants.items():
                state = self.store.tenant(tenant)
                state.datasets, state.batches = datasets, batches

        return commit


def batch_status(batch: Batch) -> str:
    return BATCH_STATUS.get(batch.job.progress.status, "processing")


def is_visible(batch: Batch) -> bool:
    """A failed export leaves a failed batch unless its scenario says it leaves none."""
    return batch.job.progress.status != FAILED or batch.job.scenario.failed_batches


def select_properties(obj: dict[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
    """Catalog's `properties=a,b`: only those top-level fields."""
    if not query.get("properties"):
        return obj
    wanted = {p.strip() for p in query["properties"].split(",") if p.strip()}
    return {k: v for k, v in obj.items() if k in wanted}


# `orderBy=[asc:|desc:]<field>`: the sort key of each field (ties keep creation order).
DATASET_ORDER: dict[str, Callable[[Dataset], Any]] = {
    "created": lambda d: d.created_ms,
    "updated": lambda d: d.created_ms,
    "name": lambda d: d.body.get("name", ""),
    "id": lambda d: d.id,
}
BATCH_ORDER: dict[str, Callable[[Batch], Any]] = {
    "created": lambda b: b.job.progress.created_ms,
    "updated": lambda b: b.job.progress.updated_ms,
    "id": lambda b: b.id,
}


def _page(
    items: Iterable[Any], query: Mapping[str, str], keys: Mapping[str, Callable[[Any], Any]]
) -> list[Any]:
    limit = min(int_param(query, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
    start = int_param(query, "start", 0)
    ordered = list(items)
    order_by = query.get("orderBy") or query.get("sort")
    if order_by:
        match = _ORDER_BY.fullmatch(order_by)
        if not match or match.group(2) not in keys:
            raise BadRequest(f"Invalid orderBy '{order_by}': use [asc:|desc:]{'|'.join(keys)}")
        ordered.sort(key=keys[match.group(2)], reverse=match.group(1) == "desc")
    return ordered[start : start + limit]


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
        "viewId": dataset.id,
        "files": f"@/dataSetFiles?dataSetId={dataset.id}",
        "tags": tags,
        "classification": {"dataBehavior": "record", "managedBy": "CUSTOMER"},
        "schemaRef": body.get("schemaRef", {}),
        "fileDescription": body.get("fileDescription", {"persisted": True, "format": "parquet"}),
        "enableErrorDiagnostics": body.get("enableErrorDiagnostics", False),
        "observableSchema": body.get("observableSchema", {}),
    }
    for optional in ("basePath", "dataSourceId", "aspect", "schema"):
        if optional in body:
            shown[optional] = body[optional]
    return shown


def batch_json(batch: Batch, record_count: int | None) -> dict[str, Any]:
    """A batch as Catalog shows it; `record_count` once the export has written it."""
    progress = batch.job.progress
    user = f"{batch.client_id}@AdobeID"
    status = batch_status(batch)
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
        "relatedObjects": [{"type": "dataSet", "id": batch.dataset_id}],
        "inputFormat": {"format": "parquet"},
        "tags": {"aep-emulator/exportJobId": [str(batch.job.id)]},
        "errors": [],
    }
    if batch.segment is not None:
        shown["tags"]["aep-emulator/segmentId"] = [batch.segment["segmentId"]]
    if progress.is_terminal:
        shown["completed"] = progress.updated_ms
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
    return shown


def _table_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "dataset"
