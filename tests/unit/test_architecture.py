"""The house rules a machine can check: no import cycle inside `emulator/` (imports under TYPE_CHECKING and
inside functions included), no module over 500 lines, and the domain free of aiohttp (pyarrow and Faker
stay inside `emulator/exportdata/`: tests/unit/test_exports.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "emulator"
MAX_LINES = 500
# Modules that may import aiohttp: the web layer and what starts it.
WEB_LAYER = (
    "emulator.app",
    "emulator.api",
    "emulator.gateway",
    "emulator.runner",
    "emulator.pytest_plugin",
    "emulator.ui",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if "_bundled" not in path.parts}


def all_imports(name: str) -> set[str]:
    """Every module this module imports, anywhere in its source, by absolute name."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def imported(name: str) -> set[str]:
    """The modules of the package this module imports."""
    return {module for module in all_imports(name) if module in MODULES and module != name}


def test_no_import_cycle_inside_the_package() -> None:
    graph = {name: imported(name) for name in MODULES}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in MODULES:
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_500_lines(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by concern"


def test_the_domain_never_imports_aiohttp() -> None:
    offenders = [
        name
        for name in MODULES
        if not name.startswith(WEB_LAYER)
        and any(module.partition(".")[0] == "aiohttp" for module in all_imports(name))
    ]
    assert offenders == []
