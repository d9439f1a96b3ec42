"""An export job's request -> one BatchSpec per batch: everything that decides a batch's rows and bytes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from emulator.exportdata.membership import Rules, predicate_of
from emulator.exportdata.population import STATUS_CODES, EventWindow, Population, Segment
from emulator.jobs import DEFAULT_SEGMENT_NS, DEFAULT_SEGMENT_STATUS
from emulator.store import ExportJob
from emulator.timestamps import rfc3339_ms

PARQUET = "parquet"
JSON_LINES = "json"


@dataclass(frozen=True)
class SegmentFilter:
    segment: Segment
    statuses: frozenset[int]


@dataclass(frozen=True)
class Selection:
    """Which profiles of the population a batch holds (the request's `filter`)."""

    segments: tuple[SegmentFilter, ...] = ()
    qualified_from_ms: int | None = None  # segmentQualificationTime.startTime, inclusive
    qualified_to_ms: int | None = None  # segmentQualificationTime.endTime, inclusive
    updated_after_ms: int | None = None  # fromIngestTimestamp, strictly after
    empty_profiles: bool = False
    evaluated: bool = False  # evaluationInfo.segmentation
    # The segments rows show in segmentMembership (the tenant's and the requested ones); a qualification
    # window without segments looks at these.
    shown: tuple[Segment, ...] = ()
    # The requested segments that have an evaluated PQL definition (as the job snapshotted it), with its
    # predicate: their members are the profiles it holds for (emulator/exportdata/audience.py).
    rules: Rules = ()


@dataclass(frozen=True)
class BatchSpec:
    """Everything that decides a batch's rows and bytes."""

    population: Population
    selection: Selection
    projection: tuple[str, ...] | None
    events: EventWindow | None
    event_projection: tuple[str, ...] | None
    format: str
    max_records_per_file: int


def batch_specs(job: ExportJob, seed: int, dataset_format: str) -> tuple[BatchSpec, ...]:
    """One spec per batch of the job, in `job.batch_ids` order."""
    request = job.request
    scenario = job.scenario
    population = Population(
        seed=seed,
        tenant=population_tenant(job.tenant.org, job.tenant.sandbox),
        count=scenario.profiles.count,
        empty=scenario.profiles.empty_profiles,
        events_per_profile=scenario.profiles.events_per_profile,
    )
    filters = request.get("filter", {})
    requested = tuple(_segment_filter(raw) for raw in filters.get("segments", []))
    shown = _unique(population.base_segments() + tuple(f.segment for f in requested))
    qualification = filters.get("segmentQualificationTime", {})
    evaluated = bool(request.get("evaluationInfo", {}).get("segmentation", False))
    updated_after = _optional_ms(filters.get("fromIngestTimestamp"))
    selection = Selection(
        rules=_rules(job, requested),
        segments=requested,
        qualified_from_ms=_optional_ms(qualification.get("startTime")),
        qualified_to_ms=_optional_ms(qualification.get("endTime")),
        updated_after_ms=updated_after,
        empty_profiles=bool(filters.get("emptyProfiles", False)),
        evaluated=evaluated,
        shown=shown,
    )
    event_list = request.get("additionalFields", {}).get("eventList")
    events = None
    if event_list is not None:
        window = event_list.get("filter", {})
        # The profile filter's fromIngestTimestamp applies to events too (Segmentation API docs).
        after = [t for t in (updated_after, _optional_ms(window.get("fromIngestTimestamp"))) if t is not None]
        events = EventWindow(max(after) if after else None, _optional_ms(window.get("toIngestTimestamp")))
    spec = BatchSpec(
        population=population,
        selection=selection,
        projection=_paths(request.get("fields")),
        events=events,
        event_projection=_paths(event_list.get("fields")) if event_list else None,
        format=dataset_format,
        max_records_per_file=scenario.max_records_per_file,
    )
    if request["destination"].get("segmentPerBatch"):
        # One batch per requested segment, holding that segment's members only.
        return tuple(replace(spec, selection=replace(selection, segments=(one,))) for one in requested)
    return (spec,)


def _rules(job: ExportJob, requested: tuple[SegmentFilter, ...]) -> Rules:
    predicates = {}
    for segment_id, kind, fmt, value in job.definitions:
        predicate = predicate_of(value, fmt, kind)
        if predicate is not None:
            predicates[segment_id] = predicate
    segments = _unique(tuple(f.segment for f in requested))
    return tuple((s, predicates[s.id]) for s in segments if s.id in predicates)


def population_tenant(org: str, sandbox: str) -> str:
    """The tenant as its population's key spells it: `org/sandbox`, with `\\` and `/` escaped in the org so
    that org `X/Y` with sandbox `Z` and org `X` with sandbox `Y/Z` are different people. An org without
    either character is spelled as before, so its generated bytes do not change."""
    escaped = org.replace("\\", "\\\\").replace("/", "\\/")
    return f"{escaped}/{sandbox}"


def _segment_filter(raw: Mapping[str, Any]) -> SegmentFilter:
    statuses = raw.get("status") or DEFAULT_SEGMENT_STATUS
    return SegmentFilter(
        Segment(raw.get("segmentNs") or DEFAULT_SEGMENT_NS, raw["segmentId"]),
        frozenset(STATUS_CODES[s] for s in statuses),
    )


def _unique(segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    return tuple(dict.fromkeys(segments))


def _optional_ms(text: str | None) -> int | None:
    """Timestamps were checked when the job was created (jobs.check_timestamps)."""
    return None if text is None else rfc3339_ms(text)


def _paths(fields: str | None) -> tuple[str, ...] | None:
    """`fields` (comma-separated dot paths); None when absent or empty: everything."""
    if not fields:
        return None
    paths = tuple(p.strip() for p in fields.split(",") if p.strip())
    return paths or None
