"""An export job as AEP shows it (the wire form of GET, list and create)."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from emulator import lifecycle
from emulator.lifecycle import DATASET_WRITE, PROCESSING, SUCCEEDED
from emulator.store import ExportJob, Tenant


def job_json(job: ExportJob, counters: tuple[int, dict[str, int]] | None = None) -> dict[str, Any]:
    """The export job as AEP shows it; `counters` (total, by namespace) once it has succeeded."""
    request = job.request
    progress = job.progress
    # Only the fields AEP shows: a client's own batchId/batches or unknown keys are not echoed.
    destination: dict[str, Any] = {
        "datasetId": request["destination"]["datasetId"],
        "segmentPerBatch": request["destination"]["segmentPerBatch"],
    }
    if destination["segmentPerBatch"]:
        destination["batches"] = [
            {
                "segmentId": segment["segmentId"],
                "segmentNs": segment["segmentNs"],
                "status": segment["status"],
                "batchId": batch_id,
            }
            for segment, batch_id in zip(request["filter"]["segments"], job.batch_ids, strict=True)
        ]
    else:
        destination["batchId"] = job.batch_ids[0]
    body: dict[str, Any] = {
        "id": job.id,
        "jobType": "BATCH",
        "destination": destination,
        "schema": request["schema"],
        "imsOrgId": job.tenant.org,
        "status": progress.status,
    }
    for key in ("fields", "filter", "additionalFields", "mergePolicy", "evaluationInfo"):
        if key in request:
            body[key] = request[key]
    body["profileInstanceId"] = job.profile_instance_id
    if progress.errors:
        body["errors"] = [error.to_json() for error in progress.errors]
    body["metrics"] = _metrics(job, counters)
    body["computeGatewayJobId"] = _gateway_ids(job)
    body["creationTime"] = progress.created_ms
    body["updateTime"] = progress.updated_ms
    body["requestId"] = job.request_id
    return body


def _metrics(job: ExportJob, counters: tuple[int, dict[str, int]] | None) -> dict[str, Any]:
    timings = lifecycle.timings(job.progress)
    metrics: dict[str, Any] = {"totalTime": timings.total.to_json()}
    if timings.profile_export is not None:
        metrics["profileExportTime"] = timings.profile_export.to_json()
    if timings.dataset_write is not None:
        metrics["aCPDatasetWriteTime"] = timings.dataset_write.to_json()
    if counters is not None and job.progress.status == SUCCEEDED:
        metrics["totalExportedProfileCounter"] = counters[0]
        metrics["exportedProfileByNamespaceCounter"] = counters[1]
    return metrics


def _gateway_ids(job: ExportJob) -> dict[str, str]:
    """AEP shows the compute job once processing starts, and the push job once data is written."""
    transitions = job.progress.transitions
    ids: dict[str, str] = {}
    if job.progress.is_terminal or any(t.status == PROCESSING for t in transitions):
        ids["exportJob"] = _compute_job_id("export", job.tenant, job.id)
    if job.progress.status == SUCCEEDED or any(t.phase == DATASET_WRITE for t in transitions):
        ids["pushJob"] = _compute_job_id("push", job.tenant, job.id)
    return ids


@lru_cache(maxsize=8192)  # shown on every read of a job; a name-based UUID costs microseconds to derive
def _compute_job_id(kind: str, tenant: Tenant, job_id: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}-{tenant}-{job_id}"))
