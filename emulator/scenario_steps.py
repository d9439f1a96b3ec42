"""What a scenario's kind allows: the statuses of export and segment jobs, and the order of steps."""

from __future__ import annotations

from typing import Any

from emulator.lifecycle import CANCELLED, DATASET_WRITE, PROCESSING, TERMINAL

# The jobs a scenario drives: export jobs (the default) or segment jobs.
EXPORT = "export"
SEGMENT = "segment"
KINDS = (EXPORT, SEGMENT)
DEFAULT_SEGMENT_SCENARIO = "segment-success"
QUEUED = "QUEUED"
CANCELLING = "CANCELLING"
# Statuses each kind of job shows; the scenario schema allows the union.
KIND_STATUSES = {
    EXPORT: ("NEW", PROCESSING, "SUCCEEDED", "FAILED", CANCELLED),
    SEGMENT: ("NEW", QUEUED, PROCESSING, "SUCCEEDED", "FAILED", CANCELLING, CANCELLED),
}


class ScenarioError(Exception):
    """A scenario that cannot be loaded: where (file and YAML path) and why."""

    def __init__(self, source: str, yaml_path: str, reason: str):
        super().__init__(f"{source}: {yaml_path or '<document>'}: {reason}")
        self.source = source
        self.yaml_path = yaml_path
        self.reason = reason


def check_steps(raw_steps: list[dict[str, Any]], source: str, kind: str = EXPORT) -> None:
    """What the schema cannot say: the order of steps and phases, and the statuses of the scenario's kind."""
    for index, raw in enumerate(raw_steps):
        if raw["status"] not in KIND_STATUSES[kind]:
            raise ScenarioError(
                source,
                f"steps[{index}].status",
                f"{raw['status']} is not a status of {kind} jobs ({', '.join(KIND_STATUSES[kind])})",
            )
        if kind == SEGMENT and "phase" in raw:
            raise ScenarioError(source, f"steps[{index}].phase", "segment jobs have no phases")
    first = raw_steps[0]
    if first["status"] in TERMINAL:
        raise ScenarioError(
            source,
            "steps[0].status",
            "the first step is the status at creation: NEW or PROCESSING (for segment jobs, also QUEUED)",
        )
    if "after" in first:
        raise ScenarioError(source, "steps[0].after", "the first step is reached at creation: no 'after'")
    writing = False
    for index, raw in enumerate(raw_steps):
        if index and "after" not in raw:
            raise ScenarioError(source, f"steps[{index}].after", "required on every step but the first")
        if index and raw_steps[index - 1]["status"] in TERMINAL:
            previous = raw_steps[index - 1]["status"]
            raise ScenarioError(
                source, f"steps[{index}]", f"unreachable: step {index - 1} is terminal ({previous})"
            )
        phase = raw.get("phase")
        if phase is not None and raw["status"] != PROCESSING:
            raise ScenarioError(source, f"steps[{index}].phase", "only a PROCESSING step has a phase")
        if raw["status"] == PROCESSING:
            if writing and phase != DATASET_WRITE:
                raise ScenarioError(
                    source, f"steps[{index}].phase", "the profile export cannot follow the dataset write"
                )
            writing = phase == DATASET_WRITE
