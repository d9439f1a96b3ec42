"""A module imported on first use, for features a server may never be asked for (the dashboard's views):
importing them at startup would make every cold start pay for them."""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for module `name` and imports it on the first attribute read. Importing is the import
    system's own (thread-safe, once per process); later reads cost a lookup in sys.modules.

    Bind it where the module would be imported, with the real import for the type checker:

        if TYPE_CHECKING:
            from emulator.ui import views
        else:
            views = LazyModule("emulator.ui.views")
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<LazyModule {self._name}>"
