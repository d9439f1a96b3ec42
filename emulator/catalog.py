"""Catalog Service domain: datasets and the batches export jobs write into them; listing, lookup of one or
several objects, as Catalog's docs describe them (the query language is emulator/catalog_query.py)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from emulator.budget import TenantBudget
from emulator.catalog_query import MAX_LIMIT, CatalogQuery, Item, parse, parse_properties, project
from emulator.catalog_views import (
    BATCHES,
    DATASETS,
    MEASURED,
    batch_json,
    batch_status,
    dataset_json,
)
from emulator.clock import Clock
from emulator.errors import BadRequest, NotFound
from emulator.lifecycle import FAILED
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

__all__ = ["BatchMeasures", "Catalog", "batch_status", "is_visible"]


class BatchMeasures(Protocol):
    """What a batch shows once its export has written data: counted by the export service."""

    async def prepare(self, batches: Sequence[Batch], *, size: bool) -> None:
        """Count (and with `size`, measure the files of) these batches, so the calls below answer at once."""

    def record_count(self, batch: Batch) -> int | None: ...

    def batch_size(self, batch: Batch) -> int | None: ...


class _Unmeasured:
    async def prepare(self, batches: Sequence[Batch], *, size: bool) -> None:
        return None

    def record_count(self, batch: Batch) -> int | None:
        return None

    def batch_size(self, batch: Batch) -> int | None:
        return None


class Catalog:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        seed: int,
        budget: TenantBudget | None = None,
        measures: BatchMeasures | None = None,
    ):
        self.store = store
        self.clock = clock
        self.budget = budget or TenantBudget()
        self._seed = seed
        self.measures: BatchMeasures = measures or _Unmeasured()
        self.reset_ids()

    def reset_ids(self) -> None:
        self._ids = random.Random(f"catalog-ids-{self._seed}")

    def new_id(self, hex_chars: int = 24) -> str:
        return f"{self._ids.getrandbits(hex_chars * 4):0{hex_chars}x}"

    # -- datasets -------------------------------------------------------------------------------

    def create_dataset(self, tenant: Tenant, body: dict[str, Any], client_id: str) -> Dataset:
        state = self.store.tenants.get(tenant)
        size = self.budget.size(tenant, state.held_bytes if state else 0, body)
        dataset = Dataset(self.new_id(), tenant, self.clock.now_ms(), body, client_id)
        self.store.tenant(tenant).add_dataset(dataset, size)
        return dataset

    def dataset(self, tenant: Tenant, dataset_id: str) -> Dataset:
        state = self.store.tenants.get(tenant)
        dataset = state.datasets.get(dataset_id) if state else None
        if dataset is None:
            raise NotFound(f"DataSet '{dataset_id}' not found.")
        return dataset

    def list_datasets(
        self, tenant: Tenant, params: Mapping[str, str], property_values: Sequence[str] = ()
    ) -> dict[str, dict[str, Any]]:
        """GET /dataSets: one page of the tenant's datasets, filtered, ordered and projected."""
        query = parse(params, DATASETS, property_values)
        state = self.store.tenants.get(tenant)
        found: Iterable[Dataset] = state.datasets.values() if state else ()
        return _shown(query, query.select((d.id, dataset_json(d)) for d in found))

    def lookup_datasets(
        self, tenant: Tenant, ids: str, params: Mapping[str, str]
    ) -> dict[str, dict[str, Any]]:
        """GET /dataSets/{id} and /dataSets/{id1},{id2}: each of the tenant's datasets among the ids."""
        properties = _lookup_properties(params, "dataSets")
        state = self.store.tenants.get(tenant)
        known = state.datasets if state else {}
        wanted = _ids(ids)
        found = {i: project(dataset_json(known[i]), properties) for i in wanted if i in known}
        if not found:
            raise NotFound(_not_found("DataSet", wanted))
        return found

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

    def _visible_batches(self, tenant: Tenant) -> list[Batch]:
        state = self.store.tenants.get(tenant)
        candidates = list(state.batches.values()) if state else []
        now = self.clock.now_ms()
        for batch in candidates:
            batch.job.refresh(now)
        return [b for b in candidates if is_visible(b)]

    async def list_batches(
        self, tenant: Tenant, params: Mapping[str, str], property_values: Sequence[str] = ()
    ) -> dict[str, dict[str, Any]]:
        """GET /batches: one page of the tenant's batches, filtered, ordered and projected."""
        query = parse(params, BATCHES, property_values)
        batches = self._visible_batches(tenant)
        with_size = query.refers_to({"size"})
        if query.refers_to(MEASURED - set(query.properties or ())) or with_size:
            # The filters or the order need what the exports wrote: measure every candidate.
            await self.measures.prepare(batches, size=with_size)
            return _shown(query, query.select((b.id, self._batch_view(b, with_size)) for b in batches))
        page = query.select((b.id, batch_json(b, None)) for b in batches)
        by_id = {b.id: b for b in batches}
        shown = [by_id[object_id] for object_id, _ in page]
        await self.measures.prepare(shown, size=False)
        return {b.id: query.show(self._batch_view(b, False)) for b in shown}

    async def lookup_batches(
        self, tenant: Tenant, ids: str, params: Mapping[str, str]
    ) -> dict[str, dict[str, Any]]:
        """GET /batches/{id} and /batches/{id1},{id2}: each of the tenant's batches among the ids."""
        properties = _lookup_properties(params, "batches", ("aggregate",))
        aggregate = params.get("aggregate")
        if aggregate is not None and aggregate.lower() not in ("true", "false"):
            raise BadRequest(f"Query parameter 'aggregate' must be true or false, got '{aggregate}'")
        wanted = _ids(ids)
        visible = {b.id: b for b in self._visible_batches(tenant)}
        found = [visible[i] for i in wanted if i in visible]
        if not found:
            raise NotFound(_not_found("Batch", wanted))
        with_size = properties is not None and "size" in properties
        await self.measures.prepare(found, size=with_size)
        return {b.id: project(self._batch_view(b, with_size), properties) for b in found}

    def _batch_view(self, batch: Batch, with_size: bool) -> dict[str, Any]:
        size = self.measures.batch_size(batch) if with_size else None
        return batch_json(batch, self.measures.record_count(batch), size)

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


def is_visible(batch: Batch) -> bool:
    """A failed export leaves a failed batch unless its scenario says it leaves none."""
    return batch.job.progress.status != FAILED or batch.job.scenario.failed_batches


def _shown(query: CatalogQuery, page: list[Item]) -> dict[str, dict[str, Any]]:
    return {object_id: query.show(view) for object_id, view in page}


def _ids(raw: str) -> list[str]:
    """`id1,id2,...` (look-up-multiple-objects.md): distinct, in ascending order as the page shows them."""
    ids = raw.split(",")
    if any(not i.strip() for i in ids):
        raise BadRequest(f"Invalid id list '{raw}': ids are separated by single commas")
    if len(ids) > MAX_LIMIT:
        raise BadRequest(f"At most {MAX_LIMIT} ids can be looked up at once, got {len(ids)}")
    return sorted({i.strip() for i in ids})


def _not_found(kind: str, ids: list[str]) -> str:
    if len(ids) == 1:
        return f"{kind} '{ids[0]}' not found."
    return f"None of the {kind}s {', '.join(repr(i) for i in ids)} was found."


def _lookup_properties(
    params: Mapping[str, str], kind: str, accepted: tuple[str, ...] = ()
) -> frozenset[str] | None:
    """A lookup takes `properties` only (catalog.yaml retrieveDataset / retrieveBatch)."""
    for name in params:
        if name != "properties" and name not in accepted:
            allowed = ", ".join(("properties", *accepted))
            raise BadRequest(
                f"Query parameter '{name}' is not accepted when looking up {kind} by id (use {allowed})"
            )
    return parse_properties(params)
