"""The Exports service: a batch's files, their bytes and the counters jobs and batches show, cached."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from emulator.catalog import Catalog, batch_status
from emulator.catalog_views import export_format
from emulator.errors import BadRequest, NotFound
from emulator.exportdata.files import ExportFile, file_id, file_name, parse_file_id
from emulator.exportdata.population import Population
from emulator.exportdata.projection import exported_namespaces
from emulator.exportdata.render import CONTENT_TYPES, render
from emulator.exportdata.selection import Plan, file_count, make_plan
from emulator.exportdata.spec import PARQUET, BatchSpec, Selection, batch_specs
from emulator.lifecycle import SUCCEEDED
from emulator.options import DEFAULT_FILE_CACHE_BYTES
from emulator.store import Batch, ExportJob, Tenant

SUCCESS = "success"
DEFAULT_CACHE_BYTES = DEFAULT_FILE_CACHE_BYTES  # --file-cache-bytes
_PLAN_CACHE_SIZE = 1024
_JOB_CACHE_SIZE = 4096


@dataclass
class _JobExport:
    specs: tuple[BatchSpec, ...]
    counters: tuple[int, dict[str, int]] | None = None


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
                shown = exported_namespaces(spec)  # what the files' identityMap holds
                for namespace, count in plan.by_namespace:
                    if shown is None or namespace in shown:
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
        """Parquet, or JSON Lines for a json dataset (job creation refused formats it cannot write)."""
        state = self.catalog.store.tenants.get(job.tenant)
        dataset = state.datasets.get(job.request["destination"]["datasetId"]) if state else None
        try:
            return export_format(dataset) if dataset else PARQUET
        except BadRequest:
            return PARQUET  # a dataset from before the check (a restored state): written as Parquet

    def _file(self, batch: Batch, spec: BatchSpec, plan: Plan, index: int) -> ExportFile:
        first = index * spec.max_records_per_file
        rows = min(spec.max_records_per_file, plan.total - first)
        return ExportFile(file_id(batch.id, index), index, file_name(batch.id, index, spec.format), rows)
