"""Data Access: /data/foundation/export (a batch's files, a file's listing, and its bytes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from emulator.api.common import backend_of, json_response
from emulator.api.ranges import byte_range
from emulator.errors import BadRequest, NotFound
from emulator.gateway import tenant_of
from emulator.params import int_param
from emulator.store import Batch

if TYPE_CHECKING:
    # Imported when first used (see Backend.exports): pyarrow is slow to import.
    from emulator.exportdata import ExportFile

PREFIX = "/data/foundation/export"
PAGE_LIMIT = 100  # Data Access's default and maximum page size


async def list_batch_files(request: web.Request) -> web.Response:
    backend = backend_of(request)
    tenant = tenant_of(request)
    start = int_param(request.query, "start", 0)
    limit = min(int_param(request.query, "limit", PAGE_LIMIT, minimum=1), PAGE_LIMIT)
    batch_id = request.match_info["batch_id"]
    batch, files = backend.exports.batch_files(tenant, batch_id)
    await backend.faults.apply(backend.jobs.job_fault(batch.job, "list_batch_files"))
    origin = _origin(request)
    body: dict[str, Any] = {
        "data": [_dataset_file(origin, batch, f) for f in files[start : start + limit]],
        "_page": {"limit": limit, "count": len(files)},
    }
    if start > 0 or len(files) > limit or "limit" in request.query or "start" in request.query:
        page = f"{origin}{PREFIX}/batches/{quote(batch_id)}/files"
        links: dict[str, Any] = {"page": {"href": f"{page}?start={start}&limit={limit}", "templated": True}}
        if start + limit < len(files):
            links["next"] = {"href": f"{page}?start={start + limit}&limit={limit}"}
        body["_links"] = links
    return json_response(body)


async def get_file(request: web.Request) -> web.StreamResponse:
    """`?path=NAME`: the file's bytes (GET, with Range) or headers (HEAD); without it, the listing."""
    backend = backend_of(request)
    tenant = tenant_of(request)
    batch, export_file = backend.exports.file(tenant, request.match_info["file_id"])
    path = request.query.get("path")
    operation = "list_files" if path is None else "download_file"
    await backend.faults.apply(backend.jobs.job_fault(batch.job, operation))
    if path is None:
        if request.method == "HEAD":
            raise BadRequest("Query parameter 'path' is required for HEAD")
        return _listing(request, batch, export_file)
    if path != export_file.name:
        raise NotFound(f"File '{export_file.id}' has no path '{path}'.")
    content = backend.exports.content(batch, export_file)
    headers = {"Accept-Ranges": "bytes", "Content-Type": backend.exports.content_type(batch)}
    if request.method == "HEAD":
        # HEAD answers for the whole file; aiohttp sends the headers of this body without the body.
        return web.Response(body=content, headers=headers)
    chosen = byte_range(request.headers.get("Range"), len(content))
    if chosen is None:
        return web.Response(body=content, headers=headers)
    first, last = chosen
    headers["Content-Range"] = f"bytes {first}-{last}/{len(content)}"
    return web.Response(status=206, body=content[first : last + 1], headers=headers)


def _listing(request: web.Request, batch: Batch, export_file: ExportFile) -> web.Response:
    length = len(backend_of(request).exports.content(batch, export_file))
    href = f"{_origin(request)}{PREFIX}/files/{export_file.id}?path={quote(export_file.name)}"
    return json_response(
        {
            "data": [{"name": export_file.name, "length": str(length), "_links": {"self": {"href": href}}}],
            "_page": {"limit": PAGE_LIMIT, "count": 1},
        }
    )


def _dataset_file(origin: str, batch: Batch, export_file: ExportFile) -> dict[str, Any]:
    written = str(batch.job.progress.updated_ms)
    return {
        "dataSetFileId": export_file.id,
        "dataSetViewId": batch.dataset_id,
        "version": "1.0.0",
        "created": written,
        "updated": written,
        "records": str(export_file.records),
        "isValid": True,
        "_links": {"self": {"href": f"{origin}{PREFIX}/files/{export_file.id}"}},
    }


def _origin(request: web.Request) -> str:
    """Links point back at this emulator, so a client that follows them stays here."""
    return f"{request.scheme}://{request.host}"
