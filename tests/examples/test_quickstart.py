"""The README's 15-line fixture example, verbatim (so it cannot rot)."""

import requests

from emulator.testing import AepEmulator


def test_profile_export_succeeds(aep_emulator: AepEmulator) -> None:
    headers = aep_emulator.headers()  # a token from the emulated IMS, x-api-key, org and sandbox
    base = aep_emulator.url
    created = requests.post(
        f"{base}/data/foundation/catalog/dataSets", json={"name": "target"}, headers=headers
    )
    dataset_id = created.json()[0].rsplit("/", 1)[1]
    request = {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}}
    job = requests.post(f"{base}/data/core/ups/export/jobs", json=request, headers=headers).json()
    assert job["status"] == "NEW"
    for expected in ("PROCESSING", "SUCCEEDED"):  # the default scenario moves on each poll
        job = requests.get(f"{base}/data/core/ups/export/jobs/{job['id']}", headers=headers).json()
        assert job["status"] == expected
