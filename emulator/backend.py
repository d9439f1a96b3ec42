"""The emulator's state and services, composed once per app from `Options`."""

from __future__ import annotations

from emulator.catalog import Catalog
from emulator.clock import Clock
from emulator.jobs import ExportJobs
from emulator.journal import Journal
from emulator.options import Options
from emulator.scenarios import ScenarioRegistry, bundled, load_paths
from emulator.store import Batch, ExportJob, Store, Tenant
from emulator.tokens import Tokens
from emulator.validation import Schemas, bundled_schemas


class Backend:
    def __init__(self, options: Options, schemas: Schemas | None = None):
        self.options = options
        self.schemas = schemas or bundled_schemas()
        self.clock = Clock(options.clock, options.speed, options.start_time_ms)
        self.store = Store()
        self.tokens = Tokens()
        self.journal = Journal(options.journal_limit)
        self.scenarios = ScenarioRegistry(
            bundled() + load_paths(options.scenario_paths), options.default_scenario
        )
        self.catalog = Catalog(self.store, self.clock, options.seed)
        self.jobs = ExportJobs(self.store, self.clock, self.scenarios, self.catalog)

    def job_counters(self, job: ExportJob) -> tuple[int, dict[str, int]] | None:
        """What a succeeded job exported: total profiles and profiles per identity namespace."""
        return None

    def record_count(self, batch: Batch) -> int | None:
        """Rows in a batch once its export has succeeded."""
        return None

    def reset(self, tenant: Tenant | None = None) -> None:
        """Everything back to startup state, or one tenant's objects only."""
        self.store.clear(tenant)
        if tenant is not None:
            return
        self.catalog.reset_ids()
        self.tokens.clear()
        self.journal.clear()
        self.scenarios.reset()
        self.clock.reset()
