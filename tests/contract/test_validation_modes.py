"""`--validation strict|lenient`: strict (the default) refuses a request body AEP would refuse, naming the
JSON path and the rule; lenient logs the violation and serves the request as if the offending value were
absent, unless the request cannot be served without it."""

from __future__ import annotations

import logging
import signal
from typing import Any

import pytest

from emulator.cli import build_parser, options_from
from emulator.options import Options
from tests.cli.test_cli import Start, clean_env, one_error_line, run, start  # noqa: F401
from tests.conftest import aep_headers
from tests.contract.support import DATASETS, JOBS, EmulatorTarget, Reply, Target

LOGGER = "emulator.validation"


def segment_job(dataset_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "destination": {"datasetId": dataset_id},
        "schema": {"name": "_xdm.context.profile"},
        "filter": {"segments": [{"segmentId": "seg-a", "status": ["realized", "qualified"]}]},
    }
    body.update(changes)
    return body


def message(reply: Reply) -> str:
    body = reply.json()
    return str(body["errors"]["400"][0]["message"] if "errors" in body else body["detail"])


@pytest.fixture
async def lenient(target: Target) -> EmulatorTarget:
    assert isinstance(target, EmulatorTarget)
    return await target.with_options(validation="lenient")


async def test_strict_is_the_default() -> None:
    assert Options().validation == "strict"
    assert options_from(build_parser().parse_args(["serve"])).validation == "strict"


@pytest.mark.parametrize(
    ("changes", "path", "rule"),
    [
        ({}, "$.filter.segments[0].status[1]", "enum"),
        ({"fields": 5}, "$.fields", "type"),
        (
            {"destination": {"datasetId": "ds", "segmentPerBatch": "yes"}},
            "$.destination.segmentPerBatch",
            "type",
        ),
    ],
)
async def test_strict_refuses_what_aep_would(
    target: Target, changes: dict[str, Any], path: str, rule: str
) -> None:
    assert isinstance(target, EmulatorTarget)
    reply = await target.request(
        "POST", JOBS, json_body=segment_job(await target.create_dataset(), **changes)
    )
    assert reply.status == 400, str(reply)
    target.contract.check("createExportJob", reply)
    assert message(reply).startswith(f"Invalid request body: {path}: ") and f"(rule: {rule})" in message(
        reply
    )


async def test_lenient_serves_an_unknown_enum_value(
    lenient: EmulatorTarget, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    reply = await lenient.call("createExportJob", 200, json_body=segment_job(await lenient.create_dataset()))
    assert reply.json()["filter"]["segments"][0]["status"] == ["realized"]
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "$.filter.segments[0].status[1]" in warnings[0].getMessage()
    assert "(rule: enum)" in warnings[0].getMessage()


async def test_lenient_ignores_optional_fields_of_the_wrong_type(
    lenient: EmulatorTarget, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    body = segment_job(
        await lenient.create_dataset(),
        fields=5,
        destination={"datasetId": await lenient.create_dataset(), "segmentPerBatch": "yes"},
        filter={"segments": [{"segmentId": "seg-a", "status": ["qualified"]}], "emptyProfiles": "no"},
    )
    job = (await lenient.call("createExportJob", 200, json_body=body)).json()
    assert "fields" not in job
    assert job["destination"]["segmentPerBatch"] is False  # the default, as if it had not been sent
    assert job["filter"]["segments"][0]["status"] == ["realized", "existing"]  # ditto
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == LOGGER)
    for path in (
        "$.fields",
        "$.destination.segmentPerBatch",
        "$.filter.emptyProfiles",
        "$.filter.segments[0]",
    ):
        assert path in logged
    polled = await lenient.poll(job["id"])
    assert polled["status"] == "PROCESSING"


async def test_lenient_serves_catalog_requests_too(lenient: EmulatorTarget) -> None:
    body = {"name": "lenient", "fileDescription": {"format": "orc"}, "enableErrorDiagnostics": "yes"}
    created = await lenient.call("createDataset", 201, json_body=body)
    dataset_id = created.json()[0].rsplit("/", 1)[1]
    shown = (await lenient.call("getDataset", 200, f"{DATASETS}/{dataset_id}")).json()[dataset_id]
    assert "format" not in shown["fileDescription"]
    assert shown["enableErrorDiagnostics"] is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"schema": {"name": "_xdm.context.profile"}},
            "$: 'destination' is a required property (rule: required)",
        ),
        (
            {"destination": {"datasetId": 5}, "schema": {"name": "_xdm.context.profile"}},
            "$.destination.datasetId: 5 is not of type 'string' (rule: type)",
        ),
        (
            {"destination": {"datasetId": ""}, "schema": {"name": "_xdm.context.profile"}},
            "$.destination.datasetId: '' should be non-empty (rule: minLength)",
        ),
        (["not", "an", "object"], "$: ['not', 'an', 'object'] is not of type 'object' (rule: type)"),
    ],
)
async def test_lenient_still_refuses_what_it_cannot_serve(
    target: Target, lenient: EmulatorTarget, caplog: pytest.LogCaptureFixture, body: Any, expected: str
) -> None:
    """The same 400 as strict mode, and nothing logged as dropped."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    replies = [await t.request("POST", JOBS, json_body=body) for t in (target, lenient)]
    for reply in replies:
        assert reply.status == 400, str(reply)
        lenient.contract.check("createExportJob", reply)
        assert message(reply) == f"Invalid request body: {expected}"
    assert not [r for r in caplog.records if r.name == LOGGER]


async def test_lenient_leaves_the_control_plane_strict(lenient: EmulatorTarget) -> None:
    reply = await lenient.request("POST", "/_emulator/clock/advance", json_body={"seconds": 5, "minutes": 1})
    assert reply.status == 400, str(reply)
    lenient.contract.check("advanceClock", reply)
    assert "(rule: additionalProperties)" in message(reply)


def test_cli_flag_and_environment_variable() -> None:
    assert (
        options_from(build_parser().parse_args(["serve", "--validation", "lenient"])).validation == "lenient"
    )
    refused = run("serve", "--validation", "loose")
    assert "--validation" in one_error_line(refused)
    from_env = run("serve", env=clean_env(AEP_EMULATOR_VALIDATION="sometimes"))
    assert "AEP_EMULATOR_VALIDATION: invalid choice: 'sometimes'" in one_error_line(from_env)


def test_served_lenient_by_environment_variable(start: Start) -> None:  # noqa: F811
    server = start("--port", "0", "--clock", "manual", env=clean_env(AEP_EMULATOR_VALIDATION="lenient"))
    body = {"name": "lenient", "fileDescription": {"format": "orc"}}
    status, created = server.request("POST", DATASETS, "dataset.create.response", body, aep_headers())
    assert status == 201, created
    assert server.stop(signal.SIGTERM) == 0
    _, stderr = server.process.communicate(timeout=60)
    assert "WARNING emulator.validation: lenient validation of dataset.create.request: dropped " in stderr
    assert "$.fileDescription.format" in stderr and "(rule: enum)" in stderr
