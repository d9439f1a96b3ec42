"""The periodic and shutdown saves of `--state-file`: what runs where, and that nothing stops them.

A save reads live state on the event loop in one step; the worker thread gets only a path and bytes. It
once counted tenants in the thread while the loop added tenants ("dictionary changed size during
iteration"), which killed the periodic task silently and skipped the shutdown save.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from emulator import app as app_module
from emulator import persistence
from emulator.app import STATE_SAVER, create_app
from emulator.backend import Backend
from emulator.options import Options
from emulator.persistence import Save, Saver
from tests.conftest import START_MS, Aep, aep_headers

DATASETS = "/data/foundation/catalog/dataSets"
WAVES, PER_WAVE = 10, 300  # enough for a thread-side read of live state to hit the race in every run tried


def options(path: Path, **more: Any) -> Options:
    return Options(clock="manual", start_time_ms=START_MS, state_file=path, **more)


def saved_orgs(data: bytes) -> set[str]:
    state = json.loads(data)["state"]
    return {tenant["org"] for tenant in state["catalog"]["tenants"]}


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    """Threads take turns every microsecond instead of every 5 ms: a race between the loop and a worker
    thread shows within a few saves instead of by chance."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def when_saved(saver: Saver, monkeypatch: pytest.MonkeyPatch, done: Callable[[Save], bool]) -> asyncio.Event:
    """An event set by the first successful save for which `done(save)` holds."""
    event = asyncio.Event()
    written = saver.written

    def observed(save: Save) -> None:
        written(save)
        if done(save):
            event.set()

    monkeypatch.setattr(saver, "written", observed)
    return event


@pytest.mark.usefixtures("eager_thread_switching")
async def test_saves_every_millisecond_while_thousands_of_tenants_appear_lose_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    app = create_app(options(path, save_interval=0.001))
    saver = app[STATE_SAVER]
    orgs = {f"ORG{wave}-{n}@AdobeOrg" for wave in range(WAVES) for n in range(PER_WAVE)}
    everyone = when_saved(saver, monkeypatch, lambda save: saved_orgs(save.data) == orgs)
    async with TestClient(TestServer(app)) as client:
        for wave in range(WAVES):
            created = await asyncio.gather(
                *(
                    client.post(DATASETS, json={"name": "d"}, headers=aep_headers(org=org))
                    for org in sorted(orgs)[wave * PER_WAVE : (wave + 1) * PER_WAVE]
                )
            )
            assert {response.status for response in created} == {201}
        # The periodic task is alive: it saves the state that holds every tenant, while the app serves.
        await asyncio.wait_for(everyone.wait(), timeout=120)  # a bound on a failure, not a wait for time
        assert saved_orgs(path.read_bytes()) == orgs
        assert not saver.failed
    assert saved_orgs(path.read_bytes()) == orgs
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_the_worker_thread_gets_only_a_path_and_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = Backend(options(tmp_path / "state.json"))
    saver = Saver(backend, tmp_path / "state.json")
    calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    async def to_thread(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        calls.append((function, args, kwargs))
        return function(*args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    await app_module._save(saver)
    assert len(calls) == 1
    function, args, kwargs = calls[0]
    assert function is persistence.write_atomic
    assert [type(arg) for arg in args] == [type(saver.path), bytes] and not kwargs
    # The function itself takes nothing that could reach live state.
    assert list(inspect.signature(function).parameters) == ["path", "data"]


class Flaky:
    """A state source whose first read fails as the race did; the third read stops the periodic task."""

    def __init__(self, stop: asyncio.Event):
        self.stop = stop
        self.reads = 0

    def state(self) -> dict[str, Any]:
        self.reads += 1
        if self.reads == 1:
            raise RuntimeError("dictionary changed size during iteration")
        if self.reads == 3:
            self.stop.set()
        return {"reads": self.reads}

    def compatibility(self) -> dict[str, Any]:
        return {}

    def summary(self) -> str:
        return f"{self.reads} reads"


async def test_a_failing_save_is_logged_and_the_periodic_task_keeps_saving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    stop = asyncio.Event()
    saver = Saver(Flaky(stop), path)
    await app_module._save_every(saver, 0, stop)  # interval 0: saves back to back until the source stops it
    assert json.loads(path.read_bytes())["state"] == {"reads": 3}
    assert not saver.failed
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1 and "dictionary changed size" in caplog.text
    assert failures[0].exc_info is not None  # with its traceback


async def test_the_shutdown_save_runs_and_reports_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "state.json"
    path.parent.mkdir()
    app = create_app(options(path, save_interval=3600))
    async with TestClient(TestServer(app)) as client:
        await Aep(client).create_dataset(name="kept")
        shutil.rmtree(path.parent)  # the next write fails (the folder held the state file's lock file)
    assert app[STATE_SAVER].failed
    path.parent.mkdir()
    app = create_app(options(path, save_interval=3600))
    async with TestClient(TestServer(app)) as client:
        await Aep(client).create_dataset(name="kept")
    assert not app[STATE_SAVER].failed and path.exists()


def test_a_save_is_skipped_when_the_file_holds_the_state_already(tmp_path: Path) -> None:
    backend = Backend(Options(clock="real", state_file=tmp_path / "state.json"))
    saver = Saver(backend, tmp_path / "state.json")
    first = saver.prepare()
    assert first is not None
    assert saver.prepare() is not None  # not written yet: still to save
    saver.written(first)
    assert saver.prepare() is None  # a real clock ran meanwhile: that alone needs no write
    backend.clock.advance(1)
    assert saver.prepare() is not None


def test_a_failed_write_is_tried_again(tmp_path: Path) -> None:
    backend = Backend(Options(clock="manual", state_file=tmp_path / "state.json"))
    saver = Saver(backend, tmp_path / "state.json")
    save = saver.prepare()
    assert save is not None
    saver.not_written(OSError(28, "No space left on device"))
    assert saver.failed
    assert saver.prepare() == save


# -- structure -------------------------------------------------------------------------------------------


def test_persistence_imports_neither_the_backend_nor_the_app() -> None:
    """Not even for type checking: the backend loads the state file, so that would be a cycle."""
    source = Path(persistence.__file__).read_text()
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    assert not {"emulator.backend", "emulator.app"} & imported
    code = "import sys, emulator.persistence; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'emulator.backend'" not in loaded and "'emulator.app'" not in loaded


def test_persistence_reads_no_private_attribute_of_another_object() -> None:
    tree = ast.parse(Path(persistence.__file__).read_text())
    private = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert not private
