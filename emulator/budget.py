"""The per-tenant byte budget (`--max-tenant-bytes`): what clients store of their own requests (dataset and
job bodies, kept as sent) is bounded per tenant, so one tenant cannot grow the process without limit.

The bytes a tenant holds are counted on its state (`TenantState.held_bytes`, emulator/store.py), where its
datasets and jobs live: a job evicted past --max-jobs-per-tenant gives its bytes back as it goes, and a
reset drops the count with the tenant's state. So nothing has to watch objects die (a weak-reference
finalizer per job was five more objects the garbage collector had to scan for the server's whole life).
Objects restored from a state file are not counted (they were within a budget when saved).
"""

from __future__ import annotations

from typing import Any

from emulator.errors import PayloadTooLarge
from emulator.jsonio import dumps
from emulator.options import DEFAULT_MAX_TENANT_BYTES


class TenantBudget:
    def __init__(self, limit: int = DEFAULT_MAX_TENANT_BYTES):
        self.limit = limit

    def size(self, tenant: Any, held: int, document: Any) -> int:
        """`document`'s size, encoded; PayloadTooLarge (413) when `tenant`, holding `held` bytes, cannot
        store it."""
        size = len(dumps(document))
        if held + size > self.limit:
            org, sandbox = tenant
            raise PayloadTooLarge(
                f"Org '{org}', sandbox '{sandbox}' stores {held} bytes of dataset and job requests; this one "
                f"({size} bytes) would pass the emulator's per-tenant budget of {self.limit} bytes "
                "(--max-tenant-bytes); reset the tenant or raise the budget"
            )
        return size
