"""The `sandbox` object the Segmentation and Profile services show on their objects."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from emulator.options import DEFAULT_SANDBOX
from emulator.store import Tenant


@lru_cache(maxsize=1024)
def _sandbox_id(tenant: Tenant) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aep-emulator/sandbox/{tenant.org}/{tenant.sandbox}"))


def sandbox_json(tenant: Tenant) -> dict[str, Any]:
    """`prod` is the production default sandbox; any other name a development sandbox."""
    production = tenant.sandbox == DEFAULT_SANDBOX
    return {
        "sandboxId": _sandbox_id(tenant),
        "sandboxName": tenant.sandbox,
        "type": "production" if production else "development",
        "default": production,
    }
