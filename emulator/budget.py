"""The per-tenant byte budget (`--max-tenant-bytes`): what clients store of their own requests (dataset and
job bodies, kept as sent) is bounded per tenant, so one tenant cannot grow the process without limit.

A stored object holds its bytes for as long as it lives: they come back when it is gone (a job evicted past
--max-jobs-per-tenant, a reset), through a weak-reference finalizer, so no component has to report what it
drops. Objects restored from a state file are not counted (they were within a budget when saved).
"""

from __future__ import annotations

import weakref
from typing import Any

from emulator.errors import PayloadTooLarge
from emulator.jsonio import dumps
from emulator.options import DEFAULT_MAX_TENANT_BYTES


class TenantBudget:
    def __init__(self, limit: int = DEFAULT_MAX_TENANT_BYTES):
        self.limit = limit
        self._used: dict[Any, int] = {}  # tenant -> bytes held by its live objects

    def size(self, tenant: Any, document: Any) -> int:
        """`document`'s size, encoded; PayloadTooLarge (413) when the tenant cannot store it."""
        size = len(dumps(document))
        used = self._used.get(tenant, 0)
        if used + size > self.limit:
            org, sandbox = tenant
            raise PayloadTooLarge(
                f"Org '{org}', sandbox '{sandbox}' stores {used} bytes of dataset and job requests; this one "
                f"({size} bytes) would pass the emulator's per-tenant budget of {self.limit} bytes "
                "(--max-tenant-bytes); reset the tenant or raise the budget"
            )
        return size

    def hold(self, tenant: Any, owner: object, document: Any, size: int | None = None) -> None:
        """Charge `document` (or a `size` checked before) to `tenant` while `owner` lives."""
        if size is None:
            size = self.size(tenant, document)
        self._used[tenant] = self._used.get(tenant, 0) + size
        weakref.finalize(owner, self._release, tenant, size)

    def used(self, tenant: Any) -> int:
        return self._used.get(tenant, 0)

    def _release(self, tenant: Any, size: int) -> None:
        left = self._used.get(tenant, 0) - size
        if left > 0:
            self._used[tenant] = left
        else:
            self._used.pop(tenant, None)
