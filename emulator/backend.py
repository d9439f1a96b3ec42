"""The emulator's state and services, composed once per app from `Options`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator import persistence
from emulator.budget import TenantBudget
from emulator.catalog import Catalog, batch_status
from emulator.clock import Clock
from emulator.events import RESET, EventHub
from emulator.faults import Faults
from emulator.jobs import ExportJobs
from emulator.journal import Journal
from emulator.lifecycle import SUCCEEDED
from emulator.merge_policies import MergePolicies
from emulator.options import Options
from emulator.scenarios import ScenarioRegistry, startup_scenarios
from emulator.segment_job_view import SegmentCounts
from emulator.segment_jobs import SegmentJob, SegmentJobs
from emulator.segments import SegmentDefinitions
from emulator.store import Batch, ExportJob, Store, Tenant
from emulator.tokens import Tokens, load_credentials
from emulator.validation import Schemas, bundled_schemas, describe

if TYPE_CHECKING:
    from emulator.exportdata import Exports
    from emulator.exportdata.audience import Audience

_log = logging.getLogger(__name__)


class Backend:
    def __init__(
        self, options: Options, schemas: Schemas | None = None, notice: Callable[[str], None] | None = None
    ):
        """`notice` hears what a start decided on its own (a user scenario replacing a bundled one);
        a warning in the log by default."""
        self.options = options
        self.schemas = schemas or bundled_schemas()
        self.events = EventHub()  # what the dashboard's live feed hears (emulator/events.py)
        self.clock = Clock(options.clock, options.speed, options.start_time_ms, self.events)
        self.store = Store()
        self.tokens = Tokens(load_credentials(options.credentials_file, self.schemas))
        self.journal = Journal(options.journal_limit, self.events)
        self.faults = Faults()
        self.scenarios = ScenarioRegistry(
            startup_scenarios(options.scenario_paths, notice or _log.warning),
            options.default_scenario,
            events=self.events,
        )
        self.catalog = Catalog(
            self.store, self.clock, options.seed, TenantBudget(options.max_tenant_bytes), measures=self
        )
        self.merge_policies = MergePolicies(self.clock)
        self.definitions = SegmentDefinitions(self.clock, self.merge_policies)
        self.segment_jobs = SegmentJobs(
            self.clock,
            self.scenarios,
            self.definitions,
            self.merge_policies,
            max_per_tenant=options.max_jobs_per_tenant,
            max_processing=options.max_segment_jobs_processing,
        )
        self.jobs = ExportJobs(
            self.store,
            self.clock,
            self.scenarios,
            self.catalog,
            max_per_tenant=options.max_jobs_per_tenant,
            check_merge_policy=lambda tenant, policy: self.merge_policies.check(
                tenant, policy, "mergePolicy.id"
            ),
            definitions=self.definitions.snapshot,
            events=self.events,
        )
        self._exports: Exports | None = None
        self._audience: Audience | None = None
        # Held from the load to the last save (see persistence.StateLock); released by close().
        self.state_lock: persistence.StateLock | None = None
        if options.state_file is not None:
            path = persistence.resolve(options.state_file)
            self.state_lock = persistence.StateLock(path)
            try:
                state = persistence.load(path, self.compatibility(), self._check_state)
                if state is not None:
                    self.restore(state, source=path)
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        """Let another emulator use the state file (the app does it after its last save)."""
        if self.state_lock is not None:
            self.state_lock.release()

    def _check_state(self, document: Any) -> str | None:
        error = self.schemas.first_error("state", document)
        return None if error is None else describe(error)

    @property
    def exports(self) -> Exports:
        """Exported data, built on first use: importing pyarrow and Faker would double the cold start."""
        if self._exports is None:
            from emulator.exportdata import Exports

            self._exports = Exports(
                self.catalog, self.options.seed, cache_bytes=self.options.file_cache_bytes
            )
        return self._exports

    @property
    def audience(self) -> Audience:
        """Segment jobs' counts, built on first use (pyarrow, as the exports)."""
        if self._audience is None:
            from emulator.exportdata.audience import Audience

            self._audience = Audience(self.options.seed)
        return self._audience

    def segment_job_counts(self, job: SegmentJob) -> SegmentCounts | None:
        """The members a succeeded segment job's definitions select."""
        if job.progress.status != SUCCEEDED:
            return None
        return self.audience.job_counts(job)

    async def prepare_segment_counts(self, jobs: Iterable[SegmentJob]) -> None:
        """Count the members of these segment jobs off the event loop, so that `segment_job_counts`
        answers at once. Jobs that have not succeeded show no counts: exportdata is not imported."""
        succeeded = [job for job in jobs if job.progress.status == SUCCEEDED]
        if succeeded:
            await self.audience.prepare(succeeded)

    async def prepare_counters(self, jobs: Iterable[ExportJob]) -> None:
        """Count what these jobs exported off the event loop, so that `job_counters` answers at once.
        Jobs that have not succeeded show no counters: nothing to do, and exportdata is not imported."""
        succeeded = [job for job in jobs if job.progress.status == SUCCEEDED]
        if succeeded:
            await self.exports.prepare(succeeded)

    async def prepare_record_counts(self, batches: Iterable[Batch]) -> None:
        """The same for batches' `recordCount`."""
        jobs = {id(b.job): b.job for b in batches if batch_status(b) == "success"}
        await self.prepare_counters(jobs.values())

    def job_counters(self, job: ExportJob) -> tuple[int, dict[str, int]] | None:
        """What a succeeded job exported: total profiles and profiles per identity namespace."""
        if job.progress.status != SUCCEEDED:
            return None
        return self.exports.job_counters(job)

    def record_count(self, batch: Batch) -> int | None:
        """Rows in a batch once its export has succeeded."""
        if batch_status(batch) != "success":
            return None
        return self.exports.record_count(batch)

    # -- what Catalog shows of a batch once its export wrote data (catalog.BatchMeasures) -----------

    async def prepare(self, batches: Sequence[Batch], *, size: bool) -> None:
        """Count these batches' records (and with `size`, measure their files) off the event loop."""
        await self.prepare_record_counts(batches)
        if size:
            for batch in batches:
                await self.exports.measure(batch)

    def batch_size(self, batch: Batch) -> int | None:
        """Bytes of a `success` batch's files, once `prepare(..., size=True)` measured them."""
        if batch_status(batch) != "success":
            return None
        return self.exports.size(batch)

    def reset(self, tenant: Tenant | None = None) -> None:
        """Everything back to startup state, or one tenant's objects only."""
        self.store.clear(tenant)
        for component in (self.merge_policies, self.definitions, self.segment_jobs):
            component.reset(tenant)
        if self._exports is not None:
            self._exports.reset()  # cached plans and files are recomputable; ids restart after a full reset
        if self._audience is not None:
            self._audience.reset()
        self.events.publish(RESET)
        if tenant is not None:
            return
        self.catalog.reset_ids()
        self.tokens.clear()
        self.journal.clear()
        self.scenarios.reset()
        self.clock.reset()

    # -- state file (emulator/persistence.py) ---------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything a restart keeps, as JSON-able data, read in one synchronous step (one instant). Not
        kept: the request journal, and exported files (a function of the seed and the job, made again)."""
        return {
            "clock": self.clock.state(),
            "tokens": self.tokens.state(),
            "scenarios": self.scenarios.state(),
            "jobs": self.jobs.state(),
            "catalog": self.catalog.state(),
            "audience": {
                "mergePolicies": self.merge_policies.state(),
                "definitions": self.definitions.state(),
                "segmentJobs": self.segment_jobs.state(),
            },
        }

    def restore(self, state: Mapping[str, Any], *, source: Path | str = "<state>") -> None:
        """Replace every component's state with a saved `state()`, all or nothing: each component checks and
        builds its part first (a StateError naming `source` when one cannot), and only then is any applied."""
        with persistence.restoring(source):
            clock = self.clock.restore(state["clock"])
            tokens = self.tokens.restore(state["tokens"])
            scenarios = self.scenarios.restore(state["scenarios"])
            jobs, by_id = self.jobs.restore(state["jobs"])
            catalog = self.catalog.restore(state["catalog"], by_id)
            audience = state.get("audience", {})  # absent from files saved before the audience leg
            policies = self.merge_policies.restore(audience.get("mergePolicies", {}))
            definitions = self.definitions.restore(audience.get("definitions", {}))
            segment_jobs = self.segment_jobs.restore(audience.get("segmentJobs", {}))
        self.store.clear()  # jobs and catalog share the store's tenants: each fills in its part
        for commit in (clock, tokens, scenarios, jobs, catalog, policies, definitions, segment_jobs):
            commit()
        if self._exports is not None:
            self._exports.reset()  # the exports keep no state: their caches are remade from the above
        if self._audience is not None:
            self._audience.reset()

    def compatibility(self) -> dict[str, Any]:
        """Options a saved state only makes sense with: exported data follows the seed, time the clock."""
        return {"seed": self.options.seed, "clock": self.clock.mode, "speed": self.clock.speed}

    def summary(self) -> str:
        """What the state holds, for the log line of a save."""
        tenants = self.store.tenants.values()
        datasets = sum(len(s.datasets) for s in tenants)
        jobs = sum(len(s.jobs) for s in tenants)
        batches = sum(len(s.batches) for s in tenants)
        definitions = sum(1 for _ in self.definitions.all())
        segment_jobs = sum(1 for _ in self.segment_jobs.all_jobs())
        return (
            f"{datasets} datasets, {jobs} jobs, {batches} batches, {len(self.tokens)} tokens, "
            f"{definitions} segment definitions, {segment_jobs} segment jobs"
        )
