"""A segment job as AEP shows it (create, GET, list and bulk-get), and what it counted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from emulator.lifecycle import PROCESSING, SUCCEEDED
from emulator.sandboxes import sandbox_json
from emulator.segment_jobs import ALL_SEGMENTS, SegmentJob

PREFIX = "/segment/jobs"


@dataclass(frozen=True)
class SegmentCount:
    """One segment's members in the population: qualified profiles, by identity namespace and by status."""

    members: int
    by_namespace: dict[str, int]
    by_status: dict[str, int]


@dataclass(frozen=True)
class SegmentCounts:
    total_profiles: int
    segments: dict[str, SegmentCount]


def segment_job_json(job: SegmentJob, counts: SegmentCounts | None = None) -> dict[str, Any]:
    """`counts` once the job has SUCCEEDED: the members its definitions select."""
    progress = job.progress
    body: dict[str, Any] = {
        "id": job.id,
        "imsOrgId": job.tenant.org,
        "sandbox": sandbox_json(job.tenant),
        "profileInstanceId": job.profile_instance_id,
        "source": "api",
        "status": progress.status,
        "batchId": job.batch_id,
        "computeJobId": job.compute_job_id,
        "computeGatewayJobId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"segment-job/{job.id}")),
        "segments": _segments(job),
        "metrics": _metrics(job, counts),
        "requestId": job.request_id,
        "schema": {"name": job.schema_name},
    }
    if progress.errors:
        body["errors"] = [error.to_json() for error in progress.errors]
    href = f"{PREFIX}/{job.id}"
    body["_links"] = {
        "cancel": {"href": href, "method": "DELETE"},
        "checkStatus": {"href": href, "method": "GET"},
    }
    body["updateTime"] = progress.updated_ms
    body["creationTime"] = progress.created_ms
    body["updateEpoch"] = progress.updated_ms // 1000
    return body


def _segments(job: SegmentJob) -> list[dict[str, Any]]:
    if job.all_segments:
        return [{"segmentId": ALL_SEGMENTS}]
    return [
        {
            "segmentId": ref.id,
            "segment": {
                "id": ref.id,
                "expression": ref.expression,
                "mergePolicyId": ref.merge_policy_id,
                "mergePolicy": {"id": ref.merge_policy_id, "version": ref.merge_policy_version},
            },
        }
        for ref in job.segments
    ]


def _metrics(job: SegmentJob, counts: SegmentCounts | None) -> dict[str, Any]:
    progress = job.progress
    end_ms = progress.updated_ms if progress.is_terminal else None
    total: dict[str, int] = {"startTimeInMs": progress.created_ms}
    if end_ms is not None:
        total.update(endTimeInMs=end_ms, totalTimeInMs=end_ms - progress.created_ms)
    start = next((t.at_ms for t in progress.transitions if t.status == PROCESSING), None)
    if start is None and progress.status == SUCCEEDED:
        start = end_ms
    segmentation: dict[str, int] = {}
    if start is not None:
        segmentation["startTimeInMs"] = start
        if end_ms is not None:
            segmentation.update(endTimeInMs=end_ms, totalTimeInMs=end_ms - start)
    metrics: dict[str, Any] = {"totalTime": total, "profileSegmentationTime": segmentation}
    if counts is not None and progress.status == SUCCEEDED:
        metrics["totalProfiles"] = counts.total_profiles
        metrics["segmentedProfileCounter"] = {sid: c.members for sid, c in counts.segments.items()}
        metrics["segmentedProfileByNamespaceCounter"] = {
            sid: c.by_namespace for sid, c in counts.segments.items()
        }
        metrics["segmentedProfileByStatusCounter"] = {sid: c.by_status for sid, c in counts.segments.items()}
        metrics["totalProfilesByMergePolicy"] = {
            ref.merge_policy_id: counts.total_profiles for ref in job.segments
        }
    return metrics
