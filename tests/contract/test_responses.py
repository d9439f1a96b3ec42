"""Every (operation, status) of the OpenAPI document, produced and checked against the document.

With AEP_DRIFT_* set, the cases marked for drift run a second time against that AEP sandbox (ids `aep-...`,
marker `drift`); without it, `test_drift_mode` is skipped and says what to set.
"""

from __future__ import annotations

import pytest

from tests.conftest import assert_matches
from tests.contract.cases import CASES, Case
from tests.contract.support import AepTarget, DriftConfig, Target, document


def _params() -> list[object]:
    params: list[object] = []
    for case in CASES:
        params.append(pytest.param(case, "emulator", id=f"emulator-{case.id}"))
        if case.drift is not None and DriftConfig.from_env() is not None:
            params.append(pytest.param(case, "aep", id=f"aep-{case.id}", marks=pytest.mark.drift))
    return params


@pytest.mark.parametrize(("case", "target"), _params(), indirect=["target"])
async def test_reply_matches_the_document(case: Case, target: Target) -> None:
    if isinstance(target, AepTarget) and case.drift == "write":
        target.require_writes()
    reply = await case.run(target)
    assert reply.status == case.status, str(reply)
    target.contract.check(case.operation_id, reply)
    if case.schema is not None and not target.drift:
        assert_matches(case.schema, reply.json())


@pytest.mark.drift
@pytest.mark.parametrize("target", ["aep"], indirect=True)
async def test_drift_mode(target: Target) -> None:
    """Configured drift mode reaches the sandbox: the gateway knows the token and the org."""
    assert isinstance(target, AepTarget)
    reply = await target.request("GET", "/data/foundation/catalog/dataSets", params={"limit": "1"})
    assert reply.status == 200, str(reply)
    target.contract.check("listDatasets", reply)


def test_every_documented_status_has_a_case() -> None:
    documented = {
        (op["operationId"], int(status))
        for item in document()["paths"].values()
        for op in item.values()
        for status in op["responses"]
    }
    produced = {(case.operation_id, case.status) for case in CASES}
    assert documented - produced == set(), "documented but never produced"
    assert produced - documented == set(), "produced but not documented"


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
