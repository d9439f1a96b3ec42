"""Scenario files: loading, validation errors (file, YAML path, reason), match globs and selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.errors import BadRequest
from emulator.faults import MAX_DELAY_SECONDS
from emulator.lifecycle import CANCELLED, DATASET_WRITE, FAILED, NEW, PROCESSING, SUCCEEDED
from emulator.resources import bundled_dir
from emulator.scenarios import (
    Scenario,
    ScenarioError,
    ScenarioRegistry,
    bundled,
    load_file,
    load_paths,
    parse,
    parse_text,
)
from emulator.validation import bundled_schemas

BUNDLED = {"success", "failure", "stuck", "slow", "partial-errors", "empty", "flaky-gateway"}
SEGMENT_BUNDLED = {"segment-success", "segment-failure", "segment-stuck", "segment-slow"}

GOOD = """
name: good
description: fine
steps:
  - status: NEW
  - status: SUCCEEDED
    after: {polls: 1}
"""


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "doc",
        "steps": [
            {"status": "NEW"},
            {"status": "PROCESSING", "after": {"polls": 1}},
            {"status": "SUCCEEDED", "after": {"polls": 1, "seconds": 5}},
        ],
    }
    base.update(changes)
    return base


def failure(doc: Any) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        parse(doc, source="test.yaml")
    return caught.value


# -- the bundled files --------------------------------------------------------------------------


def test_every_bundled_file_loads_under_its_file_name() -> None:
    scenarios = bundled()
    assert {s.name for s in scenarios} == BUNDLED | SEGMENT_BUNDLED
    folder = bundled_dir("scenarios")
    assert {p.stem for p in folder.glob("*.yaml")} == BUNDLED | SEGMENT_BUNDLED
    for scenario in scenarios:
        assert scenario.description, scenario.name
        assert Path(scenario.source).name == f"{scenario.name}.yaml"
        assert scenario.steps[0].status == NEW
        raw = yaml.safe_load(Path(scenario.source).read_text())
        assert "name" not in raw or raw["name"] == scenario.name


def test_every_bundled_file_passes_the_scenario_schema() -> None:
    """`bundled()` leaves the schema check out of every start; it happens here, and in full."""
    folder = bundled_dir("scenarios")
    for path in sorted(folder.glob("*.yaml")):
        assert bundled_schemas().errors("scenario", yaml.safe_load(path.read_text())) == [], path.name
        load_file(path)  # the same file through the checked path


def test_bundled_scenarios_say_what_they_do() -> None:
    by_name = {s.name: s for s in bundled()}
    assert by_name["stuck"].steps[-1].status == PROCESSING
    assert by_name["slow"].steps[2].phase == DATASET_WRITE
    assert sum(s.after_seconds or 0 for s in by_name["slow"].steps) == 960
    assert all(s.after_polls is None for s in by_name["slow"].steps)
    assert by_name["failure"].steps[-1].status == FAILED
    assert [e.code for e in by_name["failure"].steps[-1].errors] == ["0090000009", "unknown"]
    assert by_name["partial-errors"].steps[-1].status == SUCCEEDED
    assert by_name["partial-errors"].steps[-1].errors
    assert by_name["empty"].profiles.count == 0
    faults = by_name["flaky-gateway"].faults_for("get_job")
    assert [(f.status, f.times) for f in faults] == [(503, 2), (429, 1)]
    assert faults[1].headers == {"Retry-After": "2"}
    for name in BUNDLED - {"flaky-gateway"}:
        assert by_name[name].faults == ()
    for scenario in by_name.values():
        assert scenario.cancel_status == CANCELLED


# -- what a scenario file may say ---------------------------------------------------------------


def test_a_full_document_becomes_a_scenario() -> None:
    scenario = parse_text(
        """
name: everything
description: "  all keys  "
match: {destination.datasetId: "fail-*"}
steps:
  - status: NEW
  - status: PROCESSING
    after: {seconds: 1.5}
  - status: PROCESSING
    phase: datasetWrite
    after: {polls: 2}
  - status: FAILED
    after: {polls: 1, seconds: 120}
    errors:
      - {code: "0090000009", msg: boom, callStack: here}
      - {code: unknown, msg: aborted}
profiles: {count: 500, emptyProfiles: 25, eventsPerProfile: [1, 3]}
files: {maxRecordsPerFile: 200}
batches: {onFailure: none}
faults:
  - {operation: get_job, times: 2, respond: {status: 503}}
  - {operation: create_job, respond: {status: 429, headers: {Retry-After: "2"}, body: {oops: 1}}}
  - {operation: list_jobs, delay: {seconds: 0.5}}
  - {operation: cancel_job, drop: true, delay: {seconds: 1}}
on_cancel:
  status: FAILED
  errors: [{code: "1", msg: cancelled}]
""",
        source="inline",
    )
    assert scenario.name == "everything"
    assert scenario.description == "all keys"
    assert scenario.source == "inline"
    assert scenario.match == {"destination.datasetId": "fail-*"}
    assert [(s.status, s.after_polls, s.after_seconds, s.phase) for s in scenario.steps] == [
        (NEW, None, None, None),
        (PROCESSING, None, 1.5, None),
        (PROCESSING, 2, None, DATASET_WRITE),
        (FAILED, 1, 120, None),
    ]
    assert scenario.steps[1].after_ms == 1500
    assert scenario.steps[3].errors[1].call_stack == ""
    assert (scenario.profiles.count, scenario.profiles.empty_profiles) == (500, 25)
    assert scenario.profiles.events_per_profile == (1, 3)
    assert scenario.max_records_per_file == 200
    assert scenario.failed_batches is False
    get_job, create_job, list_jobs, cancel_job = scenario.faults
    assert (get_job.times, get_job.status, get_job.drop) == (2, 503, False)
    assert (create_job.times, create_job.body, create_job.headers) == (1, {"oops": 1}, {"Retry-After": "2"})
    assert (list_jobs.status, list_jobs.delay_seconds) == (None, 0.5)
    assert (cancel_job.drop, cancel_job.delay_seconds) == (True, 1)
    assert scenario.faults_for("get_job") == (get_job,)
    assert scenario.cancel_status == FAILED
    assert [e.msg for e in scenario.cancel_errors] == ["cancelled"]


def test_defaults_of_a_minimal_document() -> None:
    scenario = parse({"steps": [{"status": "PROCESSING"}]}, source="min.yaml", name="min")
    assert scenario.name == "min"
    assert scenario.description == ""
    assert scenario.faults == ()
    assert scenario.match == {}
    assert scenario.cancel_status == CANCELLED
    assert scenario.failed_batches is True
    assert scenario.max_records_per_file > 0
    assert scenario.summary() == {"name": "min", "description": "", "source": "min.yaml", "kind": "export"}


def test_a_name_in_the_document_wins_over_the_file_name() -> None:
    assert parse(document(name="inside"), source="x", name="outside").name == "inside"


def test_json_is_accepted_as_yaml() -> None:
    assert parse_text('{"name": "j", "steps": [{"status": "NEW"}]}', source="j").name == "j"


def test_a_fault_delay_is_bounded() -> None:
    scenario = parse(document(faults=[{"operation": "get_job", "delay": {"seconds": 30}}]), source="x")
    assert scenario.faults[0].delay_seconds == MAX_DELAY_SECONDS


# -- bad documents: where and why -----------------------------------------------------------------

STEP_2 = {"status": "SUCCEEDED", "after": {"polls": 1}}


@pytest.mark.parametrize(
    ("doc", "path", "reason"),
    [
        (
            document(steps=[{"status": "NEW"}, STEP_2, {"status": "X", "after": {"polls": 0}}]),
            "steps[2].status",
            "is not one of",
        ),
        (
            document(
                steps=[
                    {"status": "NEW"},
                    {"status": "PROCESSING", "after": {"polls": 1}},
                    {"status": "SUCCEEDED", "after": {"polls": 0}},
                ]
            ),
            "steps[2].after.polls",
            "less than the minimum of 1",
        ),
        (
            document(steps=[{"status": "NEW"}, {"status": "SUCCEEDED", "after": {"seconds": -1}}]),
            "steps[1].after.seconds",
            "less than the minimum of 0",
        ),
        (
            document(steps=[{"status": "NEW"}, {"status": "SUCCEEDED", "after": {}}]),
            "steps[1].after",
            "should be non-empty",
        ),
        (
            document(steps=[{"status": "NEW"}, {"status": "SUCCEEDED", "after": {"poll": 1}}]),
            "steps[1].after.poll",
            "unknown key (allowed: polls, seconds)",
        ),
        (
            document(steps=[{"status": "NEW"}, {"status": "SUCCEEDED", "after": {"polls": "two"}}]),
            "steps[1].after.polls",
            "is not of type 'integer'",
        ),
        (document(colour="blue"), "colour", "unknown key (allowed: name, description, match, steps"),
        (document(steps=[{"status": "NEW", "note": "x"}]), "steps[0].note", "unknown key"),
        (document(steps=[]), "steps", "should be non-empty"),
        ({"name": "x"}, "<document>", "'steps' is a required property"),
        ([1, 2], "<document>", "is not of type 'object'"),
        (None, "<document>", "is not of type 'object'"),
        (document(name="has space"), "name", "does not match"),
        (
            document(
                steps=[
                    {"status": "NEW"},
                    {"status": "FAILED", "after": {"polls": 1}, "errors": [{"code": "1"}]},
                ]
            ),
            "steps[1].errors[0]",
            "'msg' is a required property",
        ),
        (
            document(
                steps=[
                    {"status": "NEW"},
                    {"status": "FAILED", "after": {"polls": 1}, "errors": [{"code": 1, "msg": "m"}]},
                ]
            ),
            "steps[1].errors[0].code",
            "is not of type 'string'",
        ),
        (
            document(
                steps=[{"status": "NEW"}, {"status": "PROCESSING", "phase": "writing", "after": {"polls": 1}}]
            ),
            "steps[1].phase",
            "is not one of",
        ),
        (document(match={"destination.datasetId": 5}), "match.destination.datasetId", "is not of type"),
        (document(profiles={"count": -1}), "profiles.count", "less than the minimum of 0"),
        (document(profiles={"eventsPerProfile": [1]}), "profiles.eventsPerProfile", "is too short"),
        (document(files={"maxRecordsPerFile": 0}), "files.maxRecordsPerFile", "less than the minimum"),
        (document(batches={"onFailure": "keep"}), "batches.onFailure", "is not one of"),
        (document(on_cancel={"status": "SUCCEEDED"}), "on_cancel.status", "is not one of"),
        (document(on_cancel={}), "on_cancel", "'status' is a required property"),
        (
            document(faults=[{"operation": "get_jobs", "respond": {"status": 503}}]),
            "faults[0].operation",
            "is not one of",
        ),
        (
            document(faults=[{"operation": "get_job", "respond": {"status": 200}}]),
            "faults[0].respond.status",
            "less than the minimum of 400",
        ),
        (
            document(faults=[{"operation": "get_job", "respond": {"headers": {"a": "b"}}}]),
            "faults[0].respond",
            "'status' is a required property",
        ),
        (
            document(
                faults=[{"operation": "get_job", "respond": {"status": 429, "headers": {"Retry-After": 2}}}]
            ),
            "faults[0].respond.headers.Retry-After",
            "is not of type 'string'",
        ),
        (
            document(faults=[{"operation": "get_job", "times": 0, "respond": {"status": 503}}]),
            "faults[0].times",
            "less than the minimum of 1",
        ),
        (
            document(faults=[{"operation": "get_job"}]),
            "faults[0]",
            "is not valid under any of the given schemas",
        ),
        (
            document(faults=[{"operation": "get_job", "drop": True, "respond": {"status": 503}}]),
            "faults[0]",
            "should not be valid",
        ),
        (document(faults=[{"operation": "get_job", "drop": False}]), "faults[0].drop", "True was expected"),
        (
            document(faults=[{"operation": "get_job", "delay": {"seconds": 31}}]),
            "faults[0].delay.seconds",
            "greater than the maximum of 30",
        ),
        # Rules beyond the schema.
        (
            document(
                steps=[
                    {"status": "NEW"},
                    {"status": "SUCCEEDED", "after": {"polls": 1}},
                    {"status": "PROCESSING", "after": {"polls": 1}},
                ]
            ),
            "steps[2]",
            "unreachable: step 1 is terminal (SUCCEEDED)",
        ),
        (
            document(
                steps=[
                    {"status": "NEW"},
                    {"status": "CANCELLED", "after": {"polls": 1}},
                    {"status": "FAILED", "after": {"polls": 1}},
                ]
            ),
            "steps[2]",
            "unreachable: step 1 is terminal (CANCELLED)",
        ),
        (document(steps=[{"status": "NEW", "after": {"polls": 1}}, STEP_2]), "steps[0].after", "no 'after'"),
        (
            document(steps=[{"status": "NEW", "after": {"seconds": 0}}, STEP_2]),
            "steps[0].after",
            "no 'after'",
        ),
        (document(steps=[{"status": "SUCCEEDED"}]), "steps[0].status", "NEW or PROCESSING"),
        (document(steps=[{"status": "NEW"}, {"status": "SUCCEEDED"}]), "steps[1].after", "required"),
        (
            document(
                steps=[{"status": "NEW"}, {"status": "NEW", "phase": "datasetWrite", "after": {"polls": 1}}]
            ),
            "steps[1].phase",
            "only a PROCESSING step has a phase",
        ),
        (
            document(
                steps=[
                    {"status": "NEW"},
                    {"status": "PROCESSING", "phase": "datasetWrite", "after": {"polls": 1}},
                    {"status": "PROCESSING", "phase": "profileExport", "after": {"polls": 1}},
                ]
            ),
            "steps[2].phase",
            "cannot follow the dataset write",
        ),
        (document(profiles={"eventsPerProfile": [5, 1]}), "profiles.eventsPerProfile", "above maximum"),
    ],
)
def test_a_bad_document_names_its_yaml_path_and_reason(doc: Any, path: str, reason: str) -> None:
    error = failure(doc)
    assert (error.source, error.yaml_path or "<document>") == ("test.yaml", path)
    assert reason in error.reason
    assert str(error) == f"test.yaml: {path}: {error.reason}"


def test_an_uploaded_document_needs_a_name() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_text("steps: [{status: NEW}]", source="upload")
    assert (caught.value.yaml_path, caught.value.source) == ("name", "upload")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("steps: [\n  {status: NEW\n", "line 3, column 1"),
        ("steps:\n\t- status: NEW\n", "line 2, column 1"),
        ("a: 1\n---\nb: 2\n", "line 2, column 1"),
        ("steps: *nowhere\n", "line 1, column 8"),
    ],
)
def test_invalid_yaml_is_reported_with_its_line(text: str, where: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_text(text, source="broken.yaml")
    assert caught.value.yaml_path == where
    assert caught.value.reason.startswith("not valid YAML")
    assert str(caught.value).startswith("broken.yaml: ")


def test_a_yaml_date_is_not_a_string() -> None:
    error = failure(yaml.safe_load("name: x\ndescription: 2024-01-01\nsteps: [{status: NEW}]"))
    assert error.yaml_path == "description"


# -- files and folders: all or nothing --------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_folder_loads_every_yaml_and_yml_file_sorted(tmp_path: Path) -> None:
    write(tmp_path, "b.yml", "steps: [{status: NEW}]")
    write(tmp_path, "a.yaml", "steps: [{status: NEW}]")
    write(tmp_path, "notes.txt", "not a scenario")
    (tmp_path / "sub.yaml").mkdir()
    assert [s.name for s in load_paths([tmp_path])] == ["a", "b"]


def test_files_and_folders_together(tmp_path: Path) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    write(folder, "c.yaml", "steps: [{status: NEW}]")
    single = write(tmp_path, "d.yaml", "name: dee\nsteps: [{status: NEW}]")
    assert [s.name for s in load_paths([single, folder])] == ["dee", "c"]


def test_a_file_named_twice_loads_once(tmp_path: Path) -> None:
    single = write(tmp_path, "a.yaml", "steps: [{status: NEW}]")
    assert [s.name for s in load_paths([tmp_path, single])] == ["a"]


def test_two_files_with_one_name_are_an_error(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", "steps: [{status: NEW}]")
    second = write(tmp_path, "b.yaml", "name: a\nsteps: [{status: NEW}]")
    with pytest.raises(ScenarioError) as caught:
        load_paths([tmp_path])
    assert caught.value.source == str(second)
    assert caught.value.yaml_path == "name"
    assert str(first) in caught.value.reason


def test_one_bad_file_fails_the_whole_load(tmp_path: Path) -> None:
    write(tmp_path, "a-good.yaml", GOOD)
    bad = write(tmp_path, "b-bad.yaml", GOOD.replace("polls: 1", "polls: 0"))
    write(tmp_path, "c-good.yaml", GOOD.replace("name: good", "name: also-good"))
    loaded: list[Scenario] = []
    with pytest.raises(ScenarioError) as caught:
        loaded = load_paths([tmp_path])
    assert loaded == []
    assert caught.value.source == str(bad)
    assert caught.value.yaml_path == "steps[1].after.polls"
    assert str(caught.value).startswith(f"{bad}: steps[1].after.polls: ")


def test_a_missing_path_fails(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_paths([tmp_path / "nope.yaml"])
    assert "no such file or folder" in str(caught.value)


def test_an_unreadable_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"description: caf\xe9\nsteps: [{status: NEW}]")
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert caught.value.source == str(path)
    assert "cannot read" in caught.value.reason


# -- match globs ----------------------------------------------------------------------------------


def matcher(match: dict[str, str]) -> Scenario:
    return parse(document(match=match), source="m")


REQUEST = {
    "destination": {"datasetId": "fail-123", "segmentPerBatch": False},
    "schema": {"name": "_xdm.context.profile"},
    "fields": "identities.id,personalEmail.address",
}


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"destination.datasetId": "fail-*"}, True),
        ({"destination.datasetId": "fail-12?"}, True),
        ({"destination.datasetId": "fail-[0-9]*"}, True),
        ({"destination.datasetId": "fail-1"}, False),
        ({"destination.datasetId": "FAIL-*"}, False),  # case-sensitive
        ({"destination.datasetId": "*"}, True),
        ({"destination.segmentPerBatch": "false"}, True),
        ({"destination.datasetId": "fail-*", "schema.name": "_xdm.*"}, True),
        ({"destination.datasetId": "fail-*", "schema.name": "other"}, False),
        ({"fields": "*personalEmail*"}, True),
        ({"filter.segments": "*"}, False),  # absent field
        ({"destination": "*"}, True),  # an object is compared as its text
        ({"destination.datasetId.more": "*"}, False),
        ({}, False),  # no match: never chosen by matching
    ],
)
def test_match_globs(match: dict[str, str], expected: bool) -> None:
    assert matcher(match).matches(REQUEST) is expected


# -- selection ------------------------------------------------------------------------------------


def registry() -> ScenarioRegistry:
    scenarios = [
        parse({"name": "plain", "steps": [{"status": "NEW"}]}, source="p"),
        parse(
            {"name": "fails", "match": {"destination.datasetId": "fail-*"}, "steps": [{"status": "NEW"}]},
            source="f",
        ),
        parse(
            {
                "name": "also-fails",
                "match": {"destination.datasetId": "fail-1*"},
                "steps": [{"status": "NEW"}],
            },
            source="a",
        ),
        parse({"name": "other", "steps": [{"status": "NEW"}]}, source="o"),
    ]
    return ScenarioRegistry(scenarios, "plain")


OK_REQUEST = {"destination": {"datasetId": "ok-1"}}


def select(scenarios: ScenarioRegistry, requested: str | None, request: dict[str, Any]) -> Scenario:
    """Choose, then commit, as creating a job does."""
    choice = scenarios.choose(requested, request)
    scenarios.commit(choice)
    return choice.scenario


FAIL_REQUEST = {"destination": {"datasetId": "fail-1"}}


def test_default_when_nothing_else_holds() -> None:
    assert select(registry(), None, OK_REQUEST).name == "plain"


def test_the_first_matching_scenario_beats_the_default() -> None:
    assert select(registry(), None, FAIL_REQUEST).name == "fails"


def test_the_header_beats_match() -> None:
    assert select(registry(), "other", FAIL_REQUEST).name == "other"


def test_the_queued_scenario_beats_the_header_and_is_used_count_times() -> None:
    scenarios = registry()
    scenarios.queue_next("other", 2)
    scenarios.queue_next("fails", 1)
    assert scenarios.queued == ["other", "other", "fails"]
    choice = scenarios.choose("plain", FAIL_REQUEST)
    assert (choice.scenario.name, choice.overrode) == ("other", "plain")
    assert scenarios.queued == ["other", "other", "fails"]  # choosing takes nothing
    assert [select(scenarios, "plain", OK_REQUEST).name for _ in range(4)] == [
        "other",
        "other",
        "fails",
        "plain",
    ]
    assert scenarios.queued == []


def test_a_queued_scenario_makes_an_unknown_header_irrelevant() -> None:
    scenarios = registry()
    scenarios.queue_next("other", 1)
    assert select(scenarios, "nope", OK_REQUEST).name == "other"


def test_an_unknown_header_is_a_400_naming_the_known_scenarios() -> None:
    with pytest.raises(BadRequest) as caught:
        select(registry(), "nope", OK_REQUEST)
    assert caught.value.status == 400
    assert "'nope'" in caught.value.detail
    assert "also-fails, fails, other, plain" in caught.value.detail


@pytest.mark.parametrize("action", ["set_default", "queue_next"])
def test_an_unknown_name_is_a_400_naming_the_known_scenarios(action: str) -> None:
    scenarios = registry()
    with pytest.raises(BadRequest) as caught:
        if action == "set_default":
            scenarios.set_default("nope")
        else:
            scenarios.queue_next("nope", 1)
    assert "known scenarios: also-fails, fails, other, plain" in caught.value.detail
    assert scenarios.default == "plain"
    assert scenarios.queued == []


def test_an_unknown_startup_default_fails_early() -> None:
    with pytest.raises(BadRequest):
        ScenarioRegistry(bundled(), "nope")


def test_the_default_can_change() -> None:
    scenarios = registry()
    scenarios.set_default("other")
    assert select(scenarios, None, OK_REQUEST).name == "other"


def test_an_added_scenario_replaces_one_of_the_same_name_and_reset_forgets_it() -> None:
    scenarios = registry()
    replacement = parse(
        {"name": "plain", "description": "new", "steps": [{"status": "PROCESSING"}]}, source="u"
    )
    scenarios.add(replacement)
    scenarios.add(parse({"name": "extra", "steps": [{"status": "NEW"}]}, source="u"))
    scenarios.set_default("extra")
    scenarios.queue_next("plain", 3)
    assert scenarios.get("plain") is replacement
    scenarios.reset()
    assert scenarios.get("plain").description == ""
    assert "extra" not in scenarios.scenarios
    assert scenarios.default == "plain"
    assert scenarios.queued == []
