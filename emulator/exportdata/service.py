"""The Exports service: a batch's files, their bytes and the counters jobs and batches show, cached.

Heavy work (counting a batch's rows, rendering a file) runs in the Arrow worker thread (`worker`), one at
a time, never on the event loop; requests for the same plan or file while it is being computed share that
one computation. What a listing, a HEAD or a Range needs of a file (its length) is kept once known, in an
LRU of its own, so a file past the byte cache is never rendered again for its metadata.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, TypeVar

from emulator import __version__
from emulator.catalog import Catalog, batch_status
from emulator.catalog_views import export_format
from emulator.errors import BadRequest, NotFound
from emulator.exportdata.files import ExportFile, file_id, file_name, parse_file_id
from emulator.exportdata.population import Population
from emulator.exportdata.preview import DEFAULT_ROWS, Preview, preview
from emulator.exportdata.projection import exported_namespaces
from emulator.exportdata.render import CONTENT_TYPES, render
from emulator.exportdata.selection import Plan, file_count, make_plan
from emulator.exportdata.spec import PARQUET, BatchSpec, Selection, batch_specs
from emulator.exportdata.worker import offload
from emulator.lifecycle import SUCCEEDED
from emulator.options import DEFAULT_FILE_CACHE_BYTES
from emulator.store import Batch, ExportJob, Tenant

SUCCESS = "success"
DEFAULT_CACHE_BYTES = DEFAULT_FILE_CACHE_BYTES  # --file-cache-bytes
_PLAN_CACHE_SIZE = 1024
_JOB_CACHE_SIZE = 4096
_META_CACHE_SIZE = 65_536  # files whose length is known (about 200 bytes each)

T = TypeVar("T")


@dataclass
class _JobExport:
    specs: tuple[BatchSpec, ...]
    counters: tuple[int, dict[str, int]] | None = None


@dataclass(frozen=True)
class FileMeta:
    """What a file's headers and listing show, known without its bytes once it has been rendered."""

    length: int
    etag: str  # strong: derived from everything that decides the bytes
    last_modified: str  # HTTP date: when the job that wrote it succeeded


@dataclass(frozen=True)
class BatchFiles:
    batch: Batch
    count: int  # files in the batch
    page: list[ExportFile]  # the ones asked for only


class Exports:
    """Batches' files and their bytes, plus the counters jobs and batches show; caches are bounded."""

    def __init__(
        self,
        catalog: Catalog,
        seed: int,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ):
        self.catalog = catalog
        self.seed = seed
        self.cache_bytes = cache_bytes
        self._generation = 0
        self.reset()

    def reset(self) -> None:
        # Per job (most recently used first out): its batches' specs, and its counters, which every GET
        # of a SUCCEEDED job shows.
        self._jobs: OrderedDict[tuple[Tenant, int], _JobExport] = OrderedDict()
        self._plans: OrderedDict[tuple[Population, Selection], Plan] = OrderedDict()
        self._bytes: OrderedDict[tuple[BatchSpec, int], bytes] = OrderedDict()
        self._lengths: OrderedDict[tuple[BatchSpec, int], int] = OrderedDict()
        self._sizes: OrderedDict[BatchSpec, int] = OrderedDict()  # bytes of all of a batch's files
        self._cached_bytes = 0
        # Work under way, shared by whoever asks for the same result meanwhile. A reset starts a new
        # generation: work begun before it finishes for its own callers but fills no cache after it.
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}
        self._generation += 1
        self.generated_files = 0  # how many files were rendered (not served from the cache)

    # -- counters (synchronous: their plans are computed off the loop first by `prepare`)

    async def prepare(self, jobs: Iterable[ExportJob]) -> None:
        """Count the rows of these SUCCEEDED jobs off the event loop (a million-profile population takes
        about 0.3 s), so that `job_counters` and `record_count` then answer from the cache."""
        for job in jobs:
            if job.progress.status != SUCCEEDED:
                continue
            cached = self._job(job)
            if cached.counters is None:
                cached.counters = _counters([(spec, await self.plan_async(spec)) for spec in cached.specs])

    def job_counters(self, job: ExportJob) -> tuple[int, dict[str, int]] | None:
        """Profiles exported and profiles per identity namespace, over all of a SUCCEEDED job's files."""
        if job.progress.status != SUCCEEDED:
            return None
        cached = self._job(job)
        if cached.counters is None:  # not prepared: counted here, on the caller's thread
            cached.counters = _counters([(spec, self.plan(spec)) for spec in cached.specs])
        return cached.counters

    def record_count(self, batch: Batch) -> int | None:
        """Rows in a `success` batch."""
        if batch_status(batch) != SUCCESS:
            return None
        return self.plan(self.spec(batch)).total

    # -- files

    async def batch_files(self, tenant: Tenant, batch_id: str, start: int, limit: int) -> BatchFiles:
        """A batch of the tenant (404 otherwise), how many files it has and the page [start, start+limit)
        of them (made for the page only); no files until the batch is `success`."""
        batch = self.catalog.batch(tenant, batch_id)
        if batch_status(batch) != SUCCESS:
            return BatchFiles(batch, 0, [])
        spec = self.spec(batch)
        plan = await self.plan_async(spec)
        count = file_count(spec, plan)
        stop = min(count, start + limit)
        return BatchFiles(batch, count, [_file(batch, spec, plan, i) for i in range(min(start, stop), stop)])

    async def file(self, tenant: Tenant, dataset_file_id: str) -> tuple[Batch, ExportFile]:
        """The tenant's file with this dataSetFileId; 404 for unknown ids and unfinished batches."""
        batch_id, index = parse_file_id(dataset_file_id)
        try:
            batch = self.catalog.batch(tenant, batch_id)
        except NotFound:
            raise NotFound(f"File '{dataset_file_id}' not found.") from None
        if batch_status(batch) == SUCCESS:
            spec = self.spec(batch)
            plan = await self.plan_async(spec)
            if index < file_count(spec, plan):
                return batch, _file(batch, spec, plan, index)
        raise NotFound(f"File '{dataset_file_id}' not found.")

    async def content(self, batch: Batch, export_file: ExportFile) -> bytes:
        """The file's bytes: rendered off the loop on first fetch, kept in a bounded LRU cache."""
        spec = self.spec(batch)
        key = (spec, export_file.index)
        cached = self._bytes.get(key)
        if cached is not None:
            self._bytes.move_to_end(key)
            return cached
        plan = await self.plan_async(spec)
        generation = self._generation
        data: bytes = await self._shared(("file", key), lambda: self._offload(render, spec, plan, key[1]))
        if generation == self._generation:
            self._remember(key, data)
        return data

    async def meta(self, batch: Batch, export_file: ExportFile, length: int | None = None) -> FileMeta:
        """The file's length and validators; renders it (off the loop) only when its length is unknown
        (`length`: the caller has just had the bytes)."""
        spec = self.spec(batch)
        key = (spec, export_file.index)
        if length is None:
            length = self._lengths.get(key)
        if length is None:
            length = len(await self.content(batch, export_file))
        else:
            self._lengths.move_to_end(key)
        return FileMeta(length, _etag(spec, export_file.index), _http_date(batch.job.progress.updated_ms))

    async def measure(self, batch: Batch) -> None:
        """Learn the bytes of all of a `success` batch's files (rendering, off the loop, those whose length is
        not known yet), for Catalog's batch `size`; `size` then answers at once."""
        if batch_status(batch) != SUCCESS:
            return
        spec = self.spec(batch)
        if spec in self._sizes:
            self._sizes.move_to_end(spec)
            return
        generation = self._generation
        listed = await self.batch_files(batch.tenant, batch.id, 0, 0)
        page = await self.batch_files(batch.tenant, batch.id, 0, listed.count)
        total = sum([(await self.meta(batch, export_file)).length for export_file in page.page])
        if generation == self._generation:
            self._sizes[spec] = total
            if len(self._sizes) > _META_CACHE_SIZE:
                self._sizes.popitem(last=False)

    def size(self, batch: Batch) -> int | None:
        """The bytes `measure` learned of a `success` batch's files (None when not measured)."""
        if batch_status(batch) != SUCCESS:
            return None
        return self._sizes.get(self.spec(batch))

    async def preview(
        self, tenant: Tenant, dataset_file_id: str, rows: int = DEFAULT_ROWS
    ) -> tuple[Batch, ExportFile, Preview]:
        """The tenant's file (404 as `file`) and its first `rows` rows as text, read off the event loop."""
        batch, export_file = await self.file(tenant, dataset_file_id)
        data = await self.content(batch, export_file)
        shown = await self._offload(preview, data, self.spec(batch).format, rows)
        return batch, export_file, shown

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
        """The batch's plan, computed here (on the caller's thread) when no one has computed it yet."""
        key = (spec.population, spec.selection)
        plan = self._plans.get(key)
        if plan is None:
            plan = make_plan(spec.population, spec.selection)
            self._keep_plan(key, plan)
        else:
            self._plans.move_to_end(key)
        return plan

    async def plan_async(self, spec: BatchSpec) -> Plan:
        """The batch's plan, computed in a worker thread when it is not cached."""
        # Plans depend on the population and selection only: jobs asking the same share one.
        key = (spec.population, spec.selection)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        generation = self._generation
        plan = await self._shared(("plan", key), lambda: self._offload(make_plan, *key))
        if generation == self._generation:
            self._keep_plan(key, plan)
        return plan

    def _keep_plan(self, key: tuple[Population, Selection], plan: Plan) -> None:
        self._plans[key] = plan
        self._plans.move_to_end(key)
        if len(self._plans) > _PLAN_CACHE_SIZE:
            self._plans.popitem(last=False)

    def _remember(self, key: tuple[BatchSpec, int], data: bytes) -> None:
        self._lengths[key] = len(data)
        self._lengths.move_to_end(key)
        if len(self._lengths) > _META_CACHE_SIZE:
            self._lengths.popitem(last=False)
        if len(data) <= self.cache_bytes and key not in self._bytes:
            self._bytes[key] = data
            self._cached_bytes += len(data)
            while self._cached_bytes > self.cache_bytes:
                _, evicted = self._bytes.popitem(last=False)
                self._cached_bytes -= len(evicted)

    async def _shared(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> T:
        """One computation per key at a time: later callers await the first one's result."""
        pending = self._pending.get(key)
        if pending is not None:
            result: T = await asyncio.shield(pending)
            return result
        task = asyncio.ensure_future(start())
        self._pending[key] = task
        pending_map = self._pending  # a reset replaces the map: never clear the new one's entry
        task.add_done_callback(lambda _: pending_map.pop(key, None))
        # Shielded: one caller going away (a client disconnecting) must not cancel the others' result.
        return await asyncio.shield(task)

    async def _offload(self, work: Callable[..., T], *args: Any) -> T:
        result = await offload(work, *args)
        if work is render:
            self.generated_files += 1
        return result

    def _format(self, job: ExportJob) -> str:
        """Parquet, or JSON Lines for a json dataset (job creation refused formats it cannot write)."""
        state = self.catalog.store.tenants.get(job.tenant)
        dataset = state.datasets.get(job.request["destination"]["datasetId"]) if state else None
        try:
            return export_format(dataset) if dataset else PARQUET
        except BadRequest:
            return PARQUET  # a dataset from before the check (a restored state): written as Parquet


def _counters(plans: list[tuple[BatchSpec, Plan]]) -> tuple[int, dict[str, int]]:
    """Profiles exported, and per identity namespace those whose identityMap in the files shows it."""
    total = 0
    by_namespace: dict[str, int] = {}
    for spec, plan in plans:
        total += plan.total
        shown = exported_namespaces(spec)  # None: all; a projection may leave identityMap (or keys) out
        for namespace, count in plan.by_namespace:
            if shown is None or namespace in shown:
                by_namespace[namespace] = by_namespace.get(namespace, 0) + count
    return total, by_namespace


def _file(batch: Batch, spec: BatchSpec, plan: Plan, index: int) -> ExportFile:
    first = index * spec.max_records_per_file
    rows = min(spec.max_records_per_file, plan.total - first)
    return ExportFile(file_id(batch.id, index), index, file_name(batch.id, index, spec.format), rows)


def _etag(spec: BatchSpec, index: int) -> str:
    """A strong entity tag: the bytes are a function of the spec and the file index (and of the emulator's
    version, whose generator may change), so the same tag always means the same bytes."""
    identity = f"{__version__}\x00{spec!r}\x00{index}".encode()
    return '"' + hashlib.blake2b(identity, digest_size=16).hexdigest() + '"'


def _http_date(epoch_ms: int) -> str:
    return formatdate(epoch_ms / 1000, usegmt=True)
