"""Where the bundled `schemas/` and `scenarios/` folders are, in a wheel and in a source checkout."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def bundled_dir(name: str) -> Path:
    """A wheel maps the top-level folders into `emulator/_bundled/`; a checkout has them beside it."""
    packaged = Path(str(files("emulator"))) / "_bundled" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name
