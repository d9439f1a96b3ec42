"""What one export job may ask for: caps checked when it is created, so that no request makes the emulator
render a file, count a batch or project a path without bound.

AEP documents no limits for these; the emulator's are set from what its renderer does on one core (figures
in SECURITY.md). Each refusal is a 400 naming the cap. Deliberately free of pyarrow: it runs on every
create, and `emulator.exportdata` is imported only when data is first needed.
"""

from __future__ import annotations

from typing import Any

from emulator.errors import BadRequest
from emulator.scenarios import Scenario

# Segments the tenant's rows are always evaluated against (exportdata.population.BASE_SEGMENTS_PER_TENANT).
_BASE_SEGMENTS = 3

MAX_SEGMENTS = 1_000  # filter.segments entries in one request
MAX_BATCHES = 100  # batches of one job: with segmentPerBatch, one per requested segment
# Profiles examined to count a job's rows: the population times the segment filters each is tested
# against (about 3.7 M a second on one core, off the event loop).
MAX_EVALUATIONS = 100_000_000
MAX_FILE_ROWS = 1_000_000  # profile rows in one file: min(maxRecordsPerFile, profiles in the population)
MAX_FILE_EVENTS = 250_000  # event rows in one file with eventList: rows per file x eventsPerProfile's maximum
MAX_FILE_MEMBERSHIPS = 5_000_000  # segmentMembership entries in one file: rows per file x segments shown
MAX_FIELD_PATHS = 100  # comma-separated paths in `fields` (and in eventList.fields)
MAX_FIELD_DEPTH = 16  # dot-separated parts of one path
MAX_FIELDS_LENGTH = 4_096  # characters of one `fields` string


def check_export(request: dict[str, Any], scenario: Scenario) -> None:
    """400 when the (normalized) create request, under the scenario chosen for it, passes a cap."""
    filters = request.get("filter", {})
    segments = filters.get("segments", [])
    per_segment = bool(request["destination"].get("segmentPerBatch"))
    _fields("fields", request.get("fields"))
    event_list = request.get("additionalFields", {}).get("eventList")
    if isinstance(event_list, dict):
        _fields("additionalFields.eventList.fields", event_list.get("fields"))
    if len(segments) > MAX_SEGMENTS:
        _refuse(
            f"filter.segments: {len(segments)} segments; one export job asks for at most {MAX_SEGMENTS}",
        )
    if per_segment and len(segments) > MAX_BATCHES:
        _refuse(
            f"destination.segmentPerBatch: {len(segments)} batches (one per segment); one export job "
            f"writes at most {MAX_BATCHES}"
        )
    profiles = scenario.profiles
    population = profiles.count + profiles.empty_profiles
    evaluations = population * max(1, len(segments))
    if evaluations > MAX_EVALUATIONS:
        _refuse(
            f"filter.segments: {len(segments)} segments over the scenario '{scenario.name}''s "
            f"{population} profiles is {evaluations} profile evaluations; one export job makes at most "
            f"{MAX_EVALUATIONS} (ask for fewer segments or use a scenario with fewer profiles)"
        )
    rows = min(scenario.max_records_per_file, population)
    if rows > MAX_FILE_ROWS:
        _refuse(f"{_where(scenario)} writes files of {rows} profiles; a file holds at most {MAX_FILE_ROWS}")
    if isinstance(event_list, dict):
        events = rows * profiles.events_per_profile[1]
        if events > MAX_FILE_EVENTS:
            _refuse(
                f"additionalFields.eventList: {_where(scenario)} writes files of up to {events} events "
                f"({rows} profiles x {profiles.events_per_profile[1]}); a file holds at most "
                f"{MAX_FILE_EVENTS}"
            )
    shown = _BASE_SEGMENTS + len({(s.get("segmentNs"), s.get("segmentId")) for s in segments})
    if rows * shown > MAX_FILE_MEMBERSHIPS:
        _refuse(
            f"filter.segments: {_where(scenario)} writes files of {rows} profiles x {shown} segments = "
            f"{rows * shown} segmentMembership entries; a file holds at most {MAX_FILE_MEMBERSHIPS}"
        )


def _where(scenario: Scenario) -> str:
    """The scenario behind a cap on files, for a refusal (only then: a create that passes builds no text)."""
    return f"the scenario '{scenario.name}' (files.maxRecordsPerFile {scenario.max_records_per_file})"


def _fields(name: str, value: Any) -> None:
    if not isinstance(value, str):
        return
    if len(value) > MAX_FIELDS_LENGTH:
        _refuse(f"{name}: {len(value)} characters; at most {MAX_FIELDS_LENGTH}")
    paths = [p for p in value.split(",") if p.strip()]
    if len(paths) > MAX_FIELD_PATHS:
        _refuse(f"{name}: {len(paths)} paths; at most {MAX_FIELD_PATHS}")
    for path in paths:
        depth = path.count(".") + 1
        if depth > MAX_FIELD_DEPTH:
            _refuse(f"{name}: a path of {depth} levels; at most {MAX_FIELD_DEPTH}")


def _refuse(reason: str) -> None:
    raise BadRequest(f"Invalid request body: {reason} (the emulator's export limits, see SECURITY.md)")
