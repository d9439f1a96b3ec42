"""The dashboard's HTML: Jinja2 templates (emulator/ui/templates) with autoescaping always on, so every value
a template shows is text; and its static assets (emulator/ui/static), served by the emulator itself.

Jinja2 and the view helpers its filters use are imported on the first page rendered: an emulator nobody looks
at starts as fast as before.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
_STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\.(css|js|svg)")
UI = "/_emulator/ui"


@cache
def environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from emulator.ui.views import MAX_POLL_ROWS, clip, instant, span

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name: values are text, never markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["instant"] = instant
    env.filters["span"] = span
    env.filters["clip"] = clip
    env.globals["MAX_POLL_ROWS"] = MAX_POLL_ROWS
    env.globals["UI"] = UI
    return env


def page(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


@cache
def static_asset(name: str) -> tuple[bytes, str] | None:
    """A static file's bytes and content type; None for any name that is not one of ours."""
    if not _STATIC_NAME.fullmatch(name):
        return None
    path = STATIC / name
    if not path.is_file():
        return None
    return path.read_bytes(), STATIC_TYPES[path.suffix]
