"""Scenario files (YAML) -> validated `Scenario` objects, and the rules that pick one for a new job."""

from __future__ import annotations

import fnmatch
import json
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from emulator import yamldoc
from emulator.errors import BadRequest, Conflict
from emulator.events import SCENARIOS, EventHub
from emulator.faults import Fault, FaultError, by_operation, parse_fault
from emulator.lifecycle import CANCELLED, JobError, Step
from emulator.resources import bundled_dir
from emulator.scenario_steps import (
    DEFAULT_SEGMENT_SCENARIO,
    EXPORT,
    SEGMENT,
    ScenarioError,
    check_steps,
)

# Defined in emulator/scenario_steps.py, part of this module's interface.
__all__ = ["EXPORT", "SEGMENT", "ScenarioError"]
from emulator.validation import Schemas, bundled_schemas

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

SCENARIO_SCHEMA = "scenario"
YAML_SUFFIXES = (".yaml", ".yml")

# Far more than any scenario needs (a file, an upload, a state file's copy); a document past them is refused
# before it is validated. The depth stays well under what jsonschema and orjson (255 levels) walk.
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_DOCUMENT_VALUES = 100_000
MAX_DOCUMENT_DEPTH = 64
# Scenarios uploaded through the control plane (POST /_emulator/scenarios); replacing one by name does not
# count twice, and a reset forgets them all.
MAX_UPLOADED_SCENARIOS = 1_000
# ... and their documents together: a parsed document holds up to ~25x its text in memory (`{},` is a dict).
MAX_UPLOADED_SCENARIO_BYTES = 4 * 1024 * 1024
# Scenarios queued for the next jobs (POST /_emulator/scenarios/next), all calls together.
MAX_QUEUED = 10_000


@dataclass(frozen=True)
class ProfilesSpec:
    count: int = 1000
    empty_profiles: int = 50
    events_per_profile: tuple[int, int] = (0, 5)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    source: str
    steps: tuple[Step, ...]
    match: Mapping[str, str] = field(default_factory=dict)
    profiles: ProfilesSpec = ProfilesSpec()
    max_records_per_file: int = 10_000
    failed_batches: bool = True
    faults: tuple[Fault, ...] = ()
    cancel_status: str = CANCELLED
    cancel_errors: tuple[JobError, ...] = ()
    kind: str = EXPORT
    # The YAML or JSON it was parsed from: what a state file keeps of an uploaded scenario.
    text: str = field(default="", compare=False, repr=False)
    # `faults` by operation, built once: asked on every request to a job.
    _faults_by_operation: Mapping[str, tuple[Fault, ...]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_faults_by_operation", by_operation(self.faults))

    @property
    def size(self) -> int:
        """The document's length in UTF-8 bytes: what the cap on uploaded scenarios counts."""
        return len(self.text.encode("utf-8"))

    def matches(self, request: Mapping[str, Any] | list[Mapping[str, Any]]) -> bool:
        """Every `match` pattern holds for the request (for a list of documents: for any one of them)."""
        if not self.match:
            return False
        if isinstance(request, list):
            return any(self.matches(one) for one in request)
        return all(
            (value := _dotted(request, path)) is not None and fnmatch.fnmatchcase(_as_text(value), pattern)
            for path, pattern in self.match.items()
        )

    def faults_for(self, operation: str) -> tuple[Fault, ...]:
        return self._faults_by_operation.get(operation, ())

    def summary(self) -> dict[str, str]:
        return {"name": self.name, "description": self.description, "source": self.source, "kind": self.kind}


def parse(
    document: Any,
    *,
    source: str,
    name: str | None = None,
    schemas: Schemas | None = None,
    text: str | None = None,
    check_schema: bool = True,
) -> Scenario:
    """Validate a loaded YAML/JSON document and build the scenario, or raise `ScenarioError`.

    Every way a scenario loads comes here (an upload, `--scenarios`, `scenarios validate`, a state file), so
    they all accept and refuse the same documents. `text` is the document as written; without it the
    scenario keeps the document as JSON. `check_schema=False` only for the bundled scenarios, whose schema
    check is a test (see `bundled`); the plain-data check runs for all.
    """
    # First: JSON Schema cannot refuse NaN (every comparison with it is false), non-string keys, YAML
    # timestamps or binaries, and it recurses into whatever nesting it is given.
    problem = yamldoc.plain_data_problem(
        document, max_values=MAX_DOCUMENT_VALUES, max_depth=MAX_DOCUMENT_DEPTH
    )
    if problem is not None:
        raise ScenarioError(source, *problem)
    error = (schemas or bundled_schemas()).first_error(SCENARIO_SCHEMA, document) if check_schema else None
    if error is not None:
        raise ScenarioError(source, *_located(error))
    kind = document.get("kind", EXPORT)
    check_steps(document["steps"], source, kind)
    steps = tuple(_step(raw) for raw in document["steps"])
    resolved = document.get("name") or name
    if not resolved:
        raise ScenarioError(source, "name", "a scenario needs a name (or a file name)")
    profiles = document.get("profiles", {})
    # int(): the schema's integers include 2.0, which a range() or a format code refuses later.
    low, high = map(int, profiles.get("eventsPerProfile", ProfilesSpec.events_per_profile))
    if low > high:
        raise ScenarioError(source, "profiles.eventsPerProfile", f"minimum {low} is above maximum {high}")
    on_cancel = document.get("on_cancel", {})
    return Scenario(
        name=resolved,
        description=document.get("description", "").strip(),
        source=source,
        steps=steps,
        match=document.get("match", {}),
        profiles=ProfilesSpec(
            count=int(profiles.get("count", ProfilesSpec.count)),
            empty_profiles=int(profiles.get("emptyProfiles", ProfilesSpec.empty_profiles)),
            events_per_profile=(low, high),
        ),
        max_records_per_file=int(
            document.get("files", {}).get("maxRecordsPerFile", Scenario.max_records_per_file)
        ),
        failed_batches=document.get("batches", {}).get("onFailure", "failed") == "failed",
        faults=_faults(document.get("faults", []), source),
        cancel_status=on_cancel.get("status", CANCELLED),
        cancel_errors=tuple(_error(raw) for raw in on_cancel.get("errors", [])),
        kind=kind,
        text=json.dumps(document, default=str) if text is None else text,
    )


def _faults(raw_faults: list[dict[str, Any]], source: str) -> tuple[Fault, ...]:
    faults = []
    for index, raw in enumerate(raw_faults):
        try:
            faults.append(parse_fault(raw))
        except FaultError as exc:
            raise ScenarioError(source, f"faults[{index}].{exc.where}", exc.reason) from None
    return tuple(faults)


def parse_text(text: str, *, source: str, name: str | None = None, check_schema: bool = True) -> Scenario:
    """A scenario from YAML (JSON is YAML too)."""
    if len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", "replace")) > MAX_DOCUMENT_BYTES:
        raise ScenarioError(source, "", f"larger than {MAX_DOCUMENT_BYTES} bytes, the most a scenario may be")
    try:
        document = yamldoc.load(text)
    except yaml.YAMLError as exc:
        where = yamldoc.error_location(exc)
        raise ScenarioError(source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse(document, source=source, name=name, text=text, check_schema=check_schema)


def load_file(path: Path, *, check_schema: bool = True) -> Scenario:
    """A scenario file: a regular file (not /dev/zero, a FIFO...) of at most MAX_DOCUMENT_BYTES."""
    try:
        with path.open("rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ScenarioError(str(path), "", "not a regular file")
            raw = file.read(MAX_DOCUMENT_BYTES + 1)
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise ScenarioError(
                str(path), "", f"larger than {MAX_DOCUMENT_BYTES} bytes, the most a scenario may be"
            )
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), "", f"cannot read: {exc}") from None
    return parse_text(text, source=str(path), name=path.stem, check_schema=check_schema)


def load_paths(paths: Iterable[Path], *, check_schema: bool = True) -> list[Scenario]:
    """Files and folders (every *.yaml / *.yml inside, sorted); all or nothing."""
    files: dict[Path, Path] = {}  # resolved: as named first
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
        elif path.exists():
            found = [path]
        else:
            raise ScenarioError(str(path), "", "no such file or folder")
        for file in found:
            files.setdefault(file.resolve(), file)  # a file named twice (itself and through its folder) once
    scenarios: dict[str, Scenario] = {}
    for file in files.values():
        scenario = load_file(file, check_schema=check_schema)
        other = scenarios.get(scenario.name)
        if other is not None:
            raise ScenarioError(
                str(file), "name", f"scenario '{scenario.name}' is already defined in {other.source}"
            )
        scenarios[scenario.name] = scenario
    return list(scenarios.values())


def bundled() -> list[Scenario]:
    """The scenarios shipped with the emulator. Their schema check is part of the test suite
    (tests/unit/test_scenarios.py), not of every start: compiling the check costs a start 10-20 ms."""
    return load_paths([bundled_dir("scenarios")], check_schema=False)


def startup_scenarios(paths: Iterable[Path], notice: Callable[[str], None]) -> list[Scenario]:
    """The bundled scenarios and those in `paths`, as a server starts with them: a user scenario named like
    a bundled one replaces it (in its place, so `match` order holds), and `notice` is told in one line."""
    merged = {scenario.name: scenario for scenario in bundled()}
    for scenario in load_paths(paths):
        if scenario.name in merged:
            notice(f"scenario '{scenario.name}' from {scenario.source} replaces the bundled one")
        merged[scenario.name] = scenario
    return list(merged.values())


@dataclass(frozen=True)
class Choice:
    scenario: Scenario
    queued: bool = False  # taken from the queue (POST /_emulator/scenarios/next)
    overrode: str | None = None  # the scenario the client requested, when the queue won over it
    position: int = 0  # where in the queue a queued choice is


class ScenarioRegistry:
    """Known scenarios, the default, and the queue of scenarios for the next created jobs."""

    def __init__(
        self,
        startup: list[Scenario],
        default: str,
        segment_default: str = DEFAULT_SEGMENT_SCENARIO,
        events: EventHub | None = None,
    ):
        self._events = events or EventHub()
        self._startup = {s.name: s for s in startup}
        self._startup_defaults = {EXPORT: default, SEGMENT: segment_default}
        self.reset()
        self._of_kind(self.get(default), EXPORT)  # fail early on an unknown default
        if segment_default in self._startup:  # without segment scenarios, segment jobs get a clear 400
            self._of_kind(self._startup[segment_default], SEGMENT)

    def reset(self) -> None:
        # Counts resets: an upload parsed while one happened must not land in the state after it.
        self.generation = getattr(self, "generation", -1) + 1
        self.scenarios: dict[str, Scenario] = dict(self._startup)
        self.defaults = dict(self._startup_defaults)
        self._queued: deque[str] = deque()

    @property
    def default(self) -> str:
        """The default scenario of export jobs."""
        return self.defaults[EXPORT]

    def _of_kind(self, scenario: Scenario, kind: str) -> Scenario:
        if scenario.kind != kind:
            raise BadRequest(
                f"Scenario '{scenario.name}' is for {scenario.kind} jobs, not {kind} jobs; "
                f"{kind}-job scenarios: {self.known(kind)}"
            )
        return scenario

    def get(self, name: str) -> Scenario:
        try:
            return self.scenarios[name]
        except KeyError:
            raise BadRequest(f"Unknown scenario '{name}'; known scenarios: {self.known()}") from None

    def known(self, kind: str | None = None) -> str:
        return ", ".join(sorted(n for n, s in self.scenarios.items() if kind is None or s.kind == kind))

    def add(self, scenario: Scenario, *, generation: int | None = None) -> None:
        """An uploaded scenario; one named like a known one replaces it (and does not count twice).
        `generation`: the registry's when the upload began; refused if a reset came since."""
        if generation is not None and generation != self.generation:
            raise Conflict(
                "The emulator was reset while the scenario was being read; it was not added (upload it again)"
            )
        others = [s for s in self._uploaded() if s.name != scenario.name]  # the one it replaces is not kept
        problem = _over_caps(len(others) + 1, sum(s.size for s in [*others, scenario]))
        if problem is not None:
            raise Conflict(
                f"{problem}; replace one by uploading it under its name, or reset (POST /_emulator/reset)"
            )
        self.scenarios[scenario.name] = scenario
        self._events.publish(SCENARIOS)

    def _uploaded(self) -> list[Scenario]:
        return [s for name, s in self.scenarios.items() if self._startup.get(name) is not s]

    def set_default(self, name: str) -> None:
        """The default for jobs of the scenario's kind."""
        scenario = self.get(name)
        self.defaults[scenario.kind] = name
        self._events.publish(SCENARIOS)

    def queue_next(self, name: str, count: int) -> None:
        self.get(name)
        if len(self._queued) + count > MAX_QUEUED:
            raise BadRequest(
                f"count: the queue holds at most {MAX_QUEUED} scenarios and {len(self._queued)} are queued; "
                "create jobs to use them, or reset"
            )
        self._queued.extend([name] * count)
        self._events.publish(SCENARIOS)

    @property
    def queued(self) -> list[str]:
        return list(self._queued)

    def choose(
        self, requested: str | None, request: Mapping[str, Any] | list[Mapping[str, Any]], kind: str = EXPORT
    ) -> Choice:
        """The scenario for a new job of `kind`, first match wins: queued (the first queued scenario of that
        kind), the one the client requested by name, the first of that kind whose `match` holds, the
        kind's default. Takes nothing from the queue: `commit` does, once the job is made."""
        position = self._queued_position(kind)
        if position is not None:
            name = self._queued[position]
            overrode = requested if requested is not None and requested != name else None
            return Choice(self.get(name), queued=True, overrode=overrode, position=position)
        if requested is not None:
            if requested not in self.scenarios:
                raise BadRequest(
                    f"Unknown scenario '{requested}' requested for the job; known {kind}-job scenarios: "
                    f"{self.known(kind)}"
                )
            return Choice(self._of_kind(self.scenarios[requested], kind))
        for scenario in self.scenarios.values():
            # Most scenarios have no `match`: passed over without a call.
            if scenario.match and scenario.kind == kind and scenario.matches(request):
                return Choice(scenario)
        return Choice(self.scenarios[self.defaults[kind]])

    def _queued_position(self, kind: str) -> int | None:
        for position, name in enumerate(self._queued):
            scenario = self.scenarios.get(name)
            if scenario is not None and scenario.kind == kind:
                return position
        return None

    def commit(self, choice: Choice) -> None:
        """The job was made: a queued choice leaves the queue."""
        if choice.queued and len(self._queued) > choice.position:
            del self._queued[choice.position]

    # -- state file (emulator/persistence.py) ---------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The scenarios uploaded through the control plane (the others load from the flags again), the
        default and the queue."""
        uploaded = [self.saved(s) for s in self._uploaded()]
        return {
            "uploaded": uploaded,
            "default": self.default,
            "segmentDefault": self.defaults[SEGMENT],
            "queued": list(self._queued),
        }

    def restore(self, state: Mapping[str, Any]) -> Callable[[], None]:
        """Check a saved `state()`; the returned commit puts it in place (it cannot fail). Uploaded scenarios
        override the flags' ones of the same name, as they did before the restart."""
        scenarios = dict(self._startup)
        size = sum(len(str(s["text"]).encode("utf-8", "replace")) for s in state["uploaded"])
        problem = _over_caps(len(state["uploaded"]), size)
        if problem is not None:
            raise ValueError(problem)
        for saved in state["uploaded"]:
            scenario = self.revive(saved)
            scenarios[scenario.name] = scenario
        default = str(state["default"])
        segment_default = str(state.get("segmentDefault", self._startup_defaults[SEGMENT]))
        queued = deque(str(name) for name in state["queued"])
        for name in {default, segment_default, *queued}:
            if name not in scenarios:
                raise ValueError(
                    f"scenario '{name}' is the default or queued but is not loaded (was a file removed?)"
                )

        def commit() -> None:
            self.scenarios, self._queued = scenarios, queued
            self.defaults = {EXPORT: default, SEGMENT: segment_default}
            self.generation += 1

        return commit

    @staticmethod
    def saved(scenario: Scenario) -> dict[str, str]:
        """A scenario as a state file keeps it: its text, parsed again on load (see `revive`)."""
        return {"name": scenario.name, "source": scenario.source, "text": scenario.text}

    def revive(self, saved: Mapping[str, Any]) -> Scenario:
        """A `saved` scenario: the one the flags loaded when it is the same, else parsed from its text (so a
        job keeps exactly the scenario it was created with, even if its file changed since)."""
        name, source, text = str(saved["name"]), str(saved["source"]), str(saved["text"])
        current = self._startup.get(name)
        if current is not None and current.text == text and current.source == source:
            return current
        return parse_text(text, source=source, name=name)


def _over_caps(count: int, size: int) -> str | None:
    """Why `count` uploaded scenarios of `size` bytes in all are too many, or None."""
    if count > MAX_UPLOADED_SCENARIOS:
        return f"At most {MAX_UPLOADED_SCENARIOS} scenarios can be uploaded ({count} would be)"
    if size > MAX_UPLOADED_SCENARIO_BYTES:
        return (
            f"Uploaded scenarios can hold at most {MAX_UPLOADED_SCENARIO_BYTES} bytes of documents in all "
            f"({size} would)"
        )
    return None


def _step(raw: Mapping[str, Any]) -> Step:
    after = raw.get("after", {})
    polls, seconds = after.get("polls"), after.get("seconds")
    return Step(
        status=raw["status"],
        after_polls=None if polls is None else int(polls),
        after_seconds=None if seconds is None else float(seconds),
        phase=raw.get("phase"),
        errors=tuple(_error(e) for e in raw.get("errors", [])),
    )


def _error(raw: Mapping[str, Any]) -> JobError:
    return JobError(code=raw["code"], msg=raw["msg"], call_stack=raw.get("callStack", ""))


def _located(error: ValidationError) -> tuple[str, str]:
    """The YAML path and reason of a schema violation; an unknown key is named in the path itself."""
    path = yamldoc.path(error.absolute_path)
    schema = error.schema
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
        unknown = sorted(str(key) for key in error.instance if key not in allowed)
        if unknown and allowed:
            where = f"{path}.{unknown[0]}" if path else unknown[0]
            return where, f"unknown key (allowed: {', '.join(allowed)})"
    return path, error.message


def _dotted(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
