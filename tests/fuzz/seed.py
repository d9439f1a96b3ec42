"""Give the fuzz run real objects to reach: one finished export in its own tenant.

Usage: python seed.py BASE_URL >> schemathesis.toml

Creates a dataset and an export job (the server's default scenario, `fuzz-quick`, finishes it when
first read), then prints schemathesis `[[operations]]` settings that pin the ids, tenant and file name
for the operations that read them. Generated values for everything else (query parameters, Range
headers, ...) then exercise real batches, files and bytes instead of ending in 404. Standard library only.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any

ORG = "FUZZ@AdobeOrg"
HEADERS = {
    "Authorization": "Bearer fuzz-token",
    "x-api-key": "fuzz-client",
    "x-gw-ims-org-id": ORG,
    "x-sandbox-name": "prod",
    "Content-Type": "application/json",
}


def call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=HEADERS)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def main(base: str) -> None:
    created = call(
        base,
        "POST",
        "/data/foundation/catalog/dataSets",
        {"name": "fuzz target", "schemaRef": {"id": "https://ns.adobe.com/xdm/context/profile__union"}},
    )
    dataset_id = created[0].rsplit("/", 1)[1]
    job = call(
        base,
        "POST",
        "/data/core/ups/export/jobs",
        {"destination": {"datasetId": dataset_id}, "schema": {"name": "_xdm.context.profile"}},
    )
    finished = call(base, "GET", f"/data/core/ups/export/jobs/{job['id']}")
    if finished["status"] != "SUCCEEDED":
        raise SystemExit(f"seed: the job should have finished at once, it is {finished['status']}")
    batch_id = job["destination"]["batchId"]
    files = call(base, "GET", f"/data/foundation/export/batches/{batch_id}/files")["data"]
    file_id = files[0]["dataSetFileId"]
    name = call(base, "GET", f"/data/foundation/export/files/{file_id}")["data"][0]["name"]
    tenant = {"header.x-gw-ims-org-id": ORG}
    pins = {
        "getDataset": {**tenant, "path.dataset_id": dataset_id},
        "getBatch": {**tenant, "path.batch_id": batch_id},
        "listBatchFiles": {**tenant, "path.batch_id": batch_id},
        "getExportJob": {**tenant, "path.job_id": job["id"]},
        "getFile": {**tenant, "path.file_id": file_id, "query.path": name},
        "headFile": {**tenant, "path.file_id": file_id, "query.path": name},
    }
    print("\n# Pinned by tests/fuzz/seed.py: the seeded export's ids.")
    for operation, parameters in pins.items():
        print(f"\n[[operations]]\ninclude-operation-id = {json.dumps(operation)}")
        pairs = ", ".join(f"{json.dumps(name)} = {json.dumps(value)}" for name, value in parameters.items())
        print(f"parameters = {{{pairs}}}")


if __name__ == "__main__":
    main(sys.argv[1])
