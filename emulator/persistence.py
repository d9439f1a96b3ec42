"""`--state-file`: the emulator's state as one JSON document, written atomically and read back on start.

`snapshot(backend)` turns everything a restart must keep into JSON-able data, in one synchronous step (so it
is one consistent instant); `restore(backend, document)` puts it back, all or nothing. `Saver` adds the file
handling: an atomic write (a temporary file in the same folder, flushed and fsynced, renamed over the old
one, then the folder fsynced), skipped when nothing changed since the last write.

Kept: datasets, export jobs (request, scenario, progress with poll counts and errors, fault counters), the
batches of every job (also of deleted jobs, whose data stays), per-tenant fault counters, minted tokens,
the scenarios uploaded through the control plane (as their source text) and the scenario of every job, the
default and queued scenarios, the id generators, and the clock. Not kept: the request journal, and the
caches of exported files (recomputed from the above: exported data is a function of the seed and the job).

A scenario is saved as its source text and parsed again on load, so a job keeps exactly the scenario it
was created with even if the file it came from changed since. The scenarios given by flags are loaded from
the flags as usual; uploaded ones override them, as they did before the restart.

Clock: a manual clock comes back at the instant it was saved at. A real clock kept running while the
emulator was down: it comes back at the saved instant plus the wall time since the save, times its speed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from emulator import __version__
from emulator.lifecycle import JobError, Progress, Transition
from emulator.scenarios import Scenario, ScenarioError, parse_text
from emulator.store import Batch, Dataset, ExportJob, Tenant, TenantState
from emulator.tokens import Token

if TYPE_CHECKING:  # at run time the import would be circular: the backend loads the state file
    from emulator.backend import Backend
    from emulator.clock import Clock

FORMAT = "aep-emulator-state"
VERSION = 1

log = logging.getLogger("emulator.persistence")


class StateError(Exception):
    """A state file that cannot be used; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"state file {path}: {reason}")
        self.path = str(path)
        self.reason = reason


# -- snapshot -----------------------------------------------------------------------------------------


def snapshot(backend: Backend) -> dict[str, Any]:
    """Everything a restart keeps, as JSON-able data (shares immutable parts with the live state)."""
    keys = _ScenarioKeys()
    document = _head(backend)
    document["tokens"] = [_token_json(token) for token in _tokens(backend)]
    document["tenants"] = [
        {
            **_tenant_head(tenant, state),
            "datasets": [_dataset_json(d) for d in state.datasets.values()],
            "jobs": [_job_json(job, job.id in state.jobs, keys) for job in state.exports.values()],
            "batches": [_batch_json(b) for b in state.batches.values()],
        }
        for tenant, state in backend.store.tenants.items()
    ]
    document["scenarios"] = _scenarios_json(backend, keys)
    return document


def volatile(backend: Backend) -> dict[str, int]:
    """What changes on every read and needs no write of its own: when the snapshot was taken."""
    return {"wallMs": int(time.time() * 1000), "clockMs": backend.clock.now_ms()}


def _head(backend: Backend) -> dict[str, Any]:
    clock = backend.clock
    return {
        "format": FORMAT,
        "version": VERSION,
        "emulator": __version__,
        "compatibility": _compatibility(backend),
        "clock": {"startMs": clock.start_ms, "advancedMs": _advanced_ms(clock)},
        "ids": {
            "lastJobId": backend.store.last_job_id,
            "catalog": _random_state_json(backend.catalog._ids.getstate()),
        },
    }


def _compatibility(backend: Backend) -> dict[str, Any]:
    """Options a saved state only makes sense with: exported data depends on the seed, time on the clock."""
    clock = backend.clock
    return {"seed": backend.options.seed, "clock": clock.mode, "speed": clock.speed}


class _ScenarioKeys:
    """A key per scenario from its content (so a job's key does not depend on what else is saved), and
    the scenarios keyed since `used` was last emptied. Holds the scenarios it keyed: ids stay unique."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[Scenario, str]] = {}
        self.used: dict[str, Scenario] = {}

    def key(self, scenario: Scenario) -> str:
        known = self._known.get(id(scenario))
        if known is None:
            digest = hashlib.sha256(f"{scenario.source}\0{scenario.text}".encode(errors="replace"))
            known = self._known[id(scenario)] = (scenario, f"{scenario.name}#{digest.hexdigest()[:16]}")
        self.used[known[1]] = scenario
        return known[1]

    def forget_unused(self) -> None:
        used = {id(scenario) for scenario in self.used.values()}
        self._known = {k: v for k, v in self._known.items() if k in used}


def _scenarios_json(backend: Backend, keys: _ScenarioKeys) -> dict[str, Any]:
    registry = backend.scenarios
    startup = _startup_scenarios(backend)
    uploaded = {
        name: keys.key(scenario)
        for name, scenario in registry.scenarios.items()
        if startup.get(name) is not scenario
    }
    return {
        "table": {key: {"name": s.name, "source": s.source, "text": s.text} for key, s in keys.used.items()},
        "uploaded": uploaded,
        "default": registry.default,
        "queued": registry.queued,
    }


def _tokens(backend: Backend) -> Iterable[Token]:
    return backend.tokens._tokens.values()


def _token_json(token: Token) -> dict[str, Any]:
    orgs = None if token.orgs is None else sorted(token.orgs)
    return {"value": token.value, "clientId": token.client_id, "expiresMs": token.expires_ms, "orgs": orgs}


def _tenant_head(tenant: Tenant, state: TenantState) -> dict[str, Any]:
    return {
        "org": tenant.org,
        "sandbox": tenant.sandbox,
        "faultHits": [[name, operation, hits] for (name, operation), hits in state.fault_hits.items()],
    }


def _dataset_json(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "createdMs": dataset.created_ms,
        "body": dataset.body,
        "clientId": dataset.client_id,
    }


def _batch_json(batch: Batch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "datasetId": batch.dataset_id,
        "job": batch.job.id,
        "segment": batch.segment,
        "clientId": batch.client_id,
    }


def _job_json(job: ExportJob, listed: bool, keys: _ScenarioKeys) -> dict[str, Any]:
    progress = job.progress
    return {
        "id": job.id,
        "listed": listed,  # false: deleted by its owner; only its batches and files remain
        "request": job.request,
        "scenario": keys.key(job.scenario),
        "requestId": job.request_id,
        "batchIds": list(job.batch_ids),
        "profileInstanceId": job.profile_instance_id,
        "faultHits": dict(job.fault_hits),
        "progress": {
            "step": progress.step,
            "pollsInStep": progress.polls_in_step,
            "transitions": [[t.status, t.at_ms, t.phase] for t in progress.transitions],
            "errors": [[e.code, e.msg, e.call_stack] for e in progress.errors],
            "pinned": progress.pinned,
        },
    }


def _random_state_json(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


_T = TypeVar("_T")
# A job's fragment: the job, the progress and fault counters it was encoded with, whether it was listed.
_JobFragment = tuple[ExportJob, Progress, dict[str, int], bool, bytes]


class Encoder:
    """`snapshot()` as JSON bytes, re-encoding only the objects that changed since the previous call.

    Datasets, batches and tokens never change once made; a job changes when its progress (an immutable
    value, replaced on every change) or its fault counters do. A large state therefore costs one pass of
    identity checks per save, plus the encoding of what changed. Fragments are keyed by id() and hold
    their object, so an id is never reused while its fragment is kept.
    """

    def __init__(self) -> None:
        self._fragments: dict[int, tuple[object, bytes]] = {}
        self._jobs: dict[int, _JobFragment] = {}
        self._small: list[bytes] = []
        self._keys = _ScenarioKeys()

    def encode(self, backend: Backend, *, force: bool = True) -> bytes | None:
        """The document as `_dumps(snapshot(backend))` gives it; None if unchanged since the previous call
        and not `force`d."""
        keys = self._keys
        keys.used = {}
        fresh: dict[int, tuple[object, bytes]] = {}
        fresh_jobs: dict[int, _JobFragment] = {}
        encoded = 0

        def immutable(objects: Iterable[_T], make: Callable[[_T], Any]) -> bytes:
            nonlocal encoded
            parts: list[bytes] = []
            previous = self._fragments
            for owner in objects:
                found = previous.get(id(owner))
                if found is None or found[0] is not owner:
                    found = (owner, _dumps(make(owner)))
                    encoded += 1
                fresh[id(owner)] = found
                parts.append(found[1])
            return b",".join(parts)

        small = [_dumps(_head(backend))]
        out = [small[0][:-1], b',"tokens":[', immutable(_tokens(backend), _token_json), b'],"tenants":[']
        scenarios: dict[int, Scenario] = {}
        for index, (tenant, state) in enumerate(backend.store.tenants.items()):
            small.append(_dumps(_tenant_head(tenant, state)))
            out += [b"," if index else b"", small[-1][:-1], b',"datasets":[']
            out += [immutable(state.datasets.values(), _dataset_json), b'],"jobs":[']
            jobs: list[bytes] = []
            previous_jobs = self._jobs
            for job in state.exports.values():
                listed = job.id in state.jobs
                found = previous_jobs.get(id(job))
                if (
                    found is None
                    or found[0] is not job
                    or found[1] is not job.progress
                    or found[3] is not listed
                    or found[2] != job.fault_hits
                ):
                    data = _dumps(_job_json(job, listed, keys))
                    found = (job, job.progress, dict(job.fault_hits), listed, data)
                    encoded += 1
                fresh_jobs[id(job)] = found
                scenarios[id(job.scenario)] = job.scenario
                jobs.append(found[4])
            out += [b",".join(jobs), b'],"batches":[', immutable(state.batches.values(), _batch_json), b"]}"]
        for scenario in scenarios.values():
            keys.key(scenario)  # the table lists every job's scenario, also of jobs not encoded again
        small.append(_dumps(_scenarios_json(backend, keys)))
        out += [b'],"scenarios":', small[-1], b"}"]
        keys.forget_unused()
        changed = (
            encoded > 0
            or len(fresh) != len(self._fragments)
            or len(fresh_jobs) != len(self._jobs)
            or small != self._small
        )
        self._fragments, self._jobs, self._small = fresh, fresh_jobs, small
        return b"".join(out) if changed or force else None


# -- restore ------------------------------------------------------------------------------------------


def restore(backend: Backend, document: Mapping[str, Any], *, source: Path | str = "<state>") -> None:
    """Replace the backend's state with a snapshot's; StateError (and nothing changed) when it cannot."""
    check_header(document, source)
    try:
        restored = _Restored(backend, document, source)
    except StateError:
        raise
    except ScenarioError as exc:
        raise StateError(source, f"a saved scenario no longer loads: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise StateError(source, f"malformed state ({type(exc).__name__}: {exc})") from None
    restored.apply()


def check_header(document: Any, source: Path | str) -> None:
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise StateError(source, f'not an aep-emulator state file (no "format": "{FORMAT}")')
    version = document.get("version")
    if version != VERSION:
        raise StateError(
            source,
            f"state format version {version!r} is not supported (this emulator reads version {VERSION})",
        )


class _Restored:
    """The new state, built completely before any of it replaces the backend's."""

    def __init__(self, backend: Backend, document: Mapping[str, Any], source: Path | str):
        self.backend = backend
        self._check_compatible(document["compatibility"], source)
        self.startup = _startup_scenarios(backend)
        saved = document["scenarios"]
        table = {str(key): self._scenario(entry) for key, entry in saved["table"].items()}
        self.registered = dict(self.startup)
        for name, key in saved["uploaded"].items():
            self.registered[str(name)] = _at(table, key)
        self.default = str(saved["default"])
        self.queued = [str(name) for name in saved["queued"]]
        for name in [self.default, *self.queued]:
            if name not in self.registered:
                raise StateError(
                    source,
                    f"scenario '{name}' is the default or queued but is not loaded (was a file removed?)",
                )
        ids = document["ids"]
        self.last_job_id = int(ids["lastJobId"])
        version, internal, gauss = ids["catalog"]
        self.catalog_ids = (int(version), tuple(int(n) for n in internal), gauss)
        random.Random().setstate(self.catalog_ids)  # raises here, not half-way through apply()
        self.tokens = [
            Token(
                value=str(t["value"]),
                client_id=str(t["clientId"]),
                expires_ms=int(t["expiresMs"]),
                orgs=None if t["orgs"] is None else frozenset(str(org) for org in t["orgs"]),
            )
            for t in document["tokens"]
        ]
        self.tenants: dict[Tenant, TenantState] = {}
        for raw in document["tenants"]:
            tenant = Tenant(str(raw["org"]), str(raw["sandbox"]))
            if tenant in self.tenants:
                raise ValueError(f"tenant {tenant} appears twice")
            self.tenants[tenant] = _tenant_state(tenant, raw, table)
        clock = document["clock"]
        self.clock_start_ms = int(clock["startMs"])
        self.clock_advanced_ms = int(clock["advancedMs"])
        saved_at = document.get("savedAt") or {}
        self.clock_elapsed_ms = 0
        if backend.clock.mode == "real" and saved_at:
            # The real clock ran on while the emulator was down.
            since_save_ms = max(0, int(time.time() * 1000) - int(saved_at["wallMs"]))
            at_save = int(saved_at["clockMs"]) - self.clock_start_ms - self.clock_advanced_ms
            self.clock_elapsed_ms = max(0, at_save) + int(since_save_ms * backend.clock.speed)

    def _check_compatible(self, saved: Mapping[str, Any], source: Path | str) -> None:
        current = _compatibility(self.backend)
        flags = {"seed": "--seed", "clock": "--clock", "speed": "--speed"}
        for key, flag in flags.items():
            if saved[key] != current[key]:
                raise StateError(
                    source,
                    f"saved with {flag} {saved[key]}, started with {flag} {current[key]}: "
                    "start with the same value, or with another state file",
                )

    def _scenario(self, entry: Mapping[str, Any]) -> Scenario:
        name, source, text = str(entry["name"]), str(entry["source"]), str(entry["text"])
        current = self.startup.get(name)
        if current is not None and current.text == text and current.source == source:
            return current  # the same scenario the flags load now: share it
        return parse_text(text, source=source, name=name)

    def apply(self) -> None:
        """Nothing here can fail: every value was converted and checked already."""
        backend = self.backend
        backend.store.tenants.clear()
        backend.store.tenants.update(self.tenants)
        backend.store.last_job_id = self.last_job_id
        backend.catalog._ids.setstate(self.catalog_ids)
        backend.tokens._tokens = {token.value: token for token in self.tokens}
        registry = backend.scenarios
        registry.scenarios = self.registered
        registry.default = self.default
        registry._queued = deque(self.queued)
        _set_clock(backend.clock, self.clock_start_ms, self.clock_advanced_ms, self.clock_elapsed_ms)
        if backend._exports is not None:
            backend._exports.reset()


# The clock, catalog, tokens and scenario registry keep this state private; reading and setting it is
# confined to this module, the one place that needs to.


def _startup_scenarios(backend: Backend) -> dict[str, Scenario]:
    return backend.scenarios._startup


def _advanced_ms(clock: Clock) -> int:
    return clock._offset_ms


def _set_clock(clock: Clock, start_ms: int, advanced_ms: int, elapsed_ms: int) -> None:
    clock._start_ms = start_ms
    clock._offset_ms = advanced_ms
    # A real clock reads (monotonic now - started) * speed: back-date the start by the elapsed time.
    clock._started_monotonic = time.monotonic() - elapsed_ms / 1000 / clock.speed


def _tenant_state(tenant: Tenant, raw: Mapping[str, Any], table: Mapping[str, Scenario]) -> TenantState:
    state = TenantState()
    for d in raw["datasets"]:
        body = d["body"]
        if not isinstance(body, dict):
            raise TypeError(f"dataset {d['id']}: body is not an object")
        state.datasets[str(d["id"])] = Dataset(
            str(d["id"]), tenant, int(d["createdMs"]), body, str(d["clientId"])
        )
    jobs: dict[int, ExportJob] = {}
    listed: list[ExportJob] = []
    for j in raw["jobs"]:
        job = _job(tenant, j, table)
        if job.id in jobs:
            raise ValueError(f"job {job.id} appears twice")
        jobs[job.id] = job
        if j["listed"]:
            listed.append(job)
    for job in sorted(listed, key=lambda one: one.index_key):
        state.add_job(job)
    # Every job is an export the tenant keeps (listed or not), in creation order.
    state.exports = {job_id: jobs[job_id] for job_id in sorted(jobs)}
    for b in raw["batches"]:
        segment = b["segment"]
        if segment is not None and not isinstance(segment, dict):
            raise TypeError(f"batch {b['id']}: segment is not an object")
        state.batches[str(b["id"])] = Batch(
            str(b["id"]), tenant, str(b["datasetId"]), jobs[int(b["job"])], segment, str(b["clientId"])
        )
    for name, operation, hits in raw["faultHits"]:
        state.fault_hits[(str(name), str(operation))] = int(hits)
    return state


def _job(tenant: Tenant, raw: Mapping[str, Any], table: Mapping[str, Scenario]) -> ExportJob:
    progress = raw["progress"]
    transitions = tuple(
        Transition(str(status), int(at_ms), None if phase is None else str(phase))
        for status, at_ms, phase in progress["transitions"]
    )
    if not transitions:
        raise ValueError(f"job {raw['id']} has no transitions")
    request = raw["request"]
    if not isinstance(request, dict) or not isinstance(request.get("destination"), dict):
        raise TypeError(f"job {raw['id']}: request is not an export-job request")
    return ExportJob(
        id=int(raw["id"]),
        tenant=tenant,
        request=request,
        scenario=_at(table, raw["scenario"]),
        request_id=str(raw["requestId"]),
        batch_ids=tuple(str(b) for b in raw["batchIds"]),
        progress=Progress(
            step=int(progress["step"]),
            polls_in_step=int(progress["pollsInStep"]),
            transitions=transitions,
            errors=tuple(JobError(str(c), str(m), str(s)) for c, m, s in progress["errors"]),
            pinned=bool(progress["pinned"]),
        ),
        profile_instance_id=str(raw["profileInstanceId"]),
        fault_hits={str(k): int(v) for k, v in raw["faultHits"].items()},
    )


def _at(table: Mapping[str, Scenario], key: Any) -> Scenario:
    if not isinstance(key, str) or key not in table:
        raise IndexError(f"no saved scenario {key!r}")
    return table[key]


# -- the file -----------------------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any] | None:
    """The state file's document, None when there is no file yet; StateError when it cannot be used."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise StateError(path, f"folder {path.parent} does not exist") from None
        return None
    except OSError as exc:
        raise StateError(path, f"cannot read: {exc.strerror or exc}") from None
    if not raw:
        raise StateError(path, "the file is empty (delete it to start from an empty state)")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateError(path, f"not valid JSON, the file is corrupt ({exc})") from None
    check_header(document, path)
    assert isinstance(document, dict)
    return document


def write_atomic(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a part: write aside, fsync, rename, fsync the folder."""
    folder = path.parent
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    folder_descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(folder_descriptor)
    finally:
        os.close(folder_descriptor)


def stale_temporaries(path: Path) -> Iterable[Path]:
    """Temporary files a killed writer left beside the state file."""
    return path.parent.glob(f".{path.name}.*.tmp")


class Saver:
    """Writes the backend's state to `path` when it changed since the last successful write."""

    def __init__(self, backend: Backend, path: Path):
        self.backend = backend
        self.path = path
        self.failed = False  # the last write failed: the file is older than the state
        self.writes = 0
        self._encoder = Encoder()
        self._dirty = True  # changed since the last successful write

    def prepare(self) -> bytes | None:
        """The file's new content, or None when the file holds this state already (call in one step)."""
        body = self._encoder.encode(self.backend, force=self._dirty)
        if body is None:
            return None
        self._dirty = False  # set again if the write fails
        return b'{"savedAt":' + _dumps(volatile(self.backend)) + b"," + body[1:]

    def write(self, data: bytes) -> None:
        """Blocking: run it off the event loop. Raises OSError when the file cannot be written."""
        try:
            write_atomic(self.path, data)
        except OSError:
            self.failed = self._dirty = True
            raise
        self.failed = False
        self.writes += 1
        counts = self.counts()
        log.info(
            "state saved to %s: %d datasets, %d jobs, %d batches, %d tokens (%d bytes)",
            self.path,
            counts["datasets"],
            counts["jobs"],
            counts["batches"],
            counts["tokens"],
            len(data),
        )

    def counts(self) -> dict[str, int]:
        tenants = self.backend.store.tenants.values()
        return {
            "datasets": sum(len(s.datasets) for s in tenants),
            "jobs": sum(len(s.jobs) for s in tenants),
            "batches": sum(len(s.batches) for s in tenants),
            "tokens": len(self.backend.tokens._tokens),
        }

    def clean_stale(self) -> None:
        for stale in stale_temporaries(self.path):
            with contextlib.suppress(OSError):
                stale.unlink()


def _dumps(document: Any) -> bytes:
    # ensure_ascii: a lone surrogate that got into the state still writes as valid JSON text.
    return json.dumps(document, separators=(",", ":")).encode()
