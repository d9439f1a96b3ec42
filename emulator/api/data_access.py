"""Data Access: /data/foundation/export (a batch's files, a file's listing, and its bytes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from emulator.api.common import backend_of, concern, json_response
from emulator.api.ranges import byte_range, if_range_holds
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
    start, limit = _page_params(request)
    batch_id = request.match_info["batch_id"]
    listed = await backend.exports.batch_files(tenant, batch_id, start, limit)
    batch, count = listed.batch, listed.count
    concern(request, batch.job)
    await backend.faults.apply(backend.jobs.job_fault(batch.job, "list_batch_files"))
    origin = _origin(request)
    # Each entry's `size` is its file's bytes: a file not served yet is rendered (off the loop) to know it.
    sizes = [(await backend.exports.meta(batch, f)).length for f in listed.page]
    body: dict[str, Any] = {
        "data": [_dataset_file(origin, batch, f, size) for f, size in zip(listed.page, sizes, strict=True)],
        "_page": {"limit": limit, "count": count},
    }
    if start > 0 or count > limit or "limit" in request.query or "start" in request.query:
        page = f"{origin}{PREFIX}/batches/{quote(batch_id)}/files"
        links: dict[str, Any] = {"page": {"href": f"{page}?start={start}&limit={limit}", "templated": True}}
        if start + limit < count:
            links["next"] = {"href": f"{page}?start={start + limit}&limit={limit}"}
        body["_links"] = links
    return json_response(body)


async def get_file(request: web.Request) -> web.StreamResponse:
    """`?path=NAME`: the file's bytes (GET, with Range and If-Range) or headers (HEAD); without it, the
    listing. A file's bytes are rendered off the event loop; its length, once known, is not rendered again."""
    backend = backend_of(request)
    tenant = tenant_of(request)
    exports = backend.exports
    start, limit = _page_params(request)  # the listing's paging (checked with `path` too)
    batch, export_file = await exports.file(tenant, request.match_info["file_id"])
    concern(request, batch.job)
    path = request.query.get("path")
    operation = "list_files" if path is None else "download_file"
    await backend.faults.apply(backend.jobs.job_fault(batch.job, operation))
    if path is None:
        if request.method == "HEAD":
            raise BadRequest("Query parameter 'path' is required for HEAD")
        return await _listing(request, batch, export_file, start, limit)
    if path != export_file.name:
        raise NotFound(f"File '{export_file.id}' has no path '{path}'.")
    # GET needs the bytes anyway (rendered once here, its length then known); HEAD only the length.
    content = None if request.method == "HEAD" else await exports.content(batch, export_file)
    meta = await exports.meta(batch, export_file, None if content is None else len(content))
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": exports.content_type(batch),
        "ETag": meta.etag,
        "Last-Modified": meta.last_modified,
    }
    if content is None:
        # HEAD answers for the whole file, without rendering it again once the length is known.
        response = web.StreamResponse(headers=headers)
        response.content_length = meta.length
        return response
    chosen = None
    if if_range_holds(request.headers.get("If-Range"), meta.etag, meta.last_modified):
        chosen = byte_range(request.headers.get("Range"), meta.length)
    if chosen is None:
        return web.Response(body=content, headers=headers)
    first, last = chosen
    headers["Content-Range"] = f"bytes {first}-{last}/{len(content)}"
    # A view, not a copy: a range of a 100 MB file is sent without duplicating it on the event loop.
    return web.Response(status=206, body=memoryview(content)[first : last + 1], headers=headers)


async def _listing(
    request: web.Request, batch: Batch, export_file: ExportFile, start: int, limit: int
) -> web.Response:
    """A file is one entry (its one part); `start` and `limit` page it like any listing, `_page.limit`
    echoes the page size used."""
    length = (await backend_of(request).exports.meta(batch, export_file)).length
    href = f"{_origin(request)}{PREFIX}/files/{export_file.id}?path={quote(export_file.name)}"
    entries = [{"name": export_file.name, "length": str(length), "_links": {"self": {"href": href}}}]
    return json_response({"data": entries[start : start + limit], "_page": {"limit": limit, "count": 1}})


def _page_params(request: web.Request) -> tuple[int, int]:
    start = int_param(request.query, "start", 0)
    limit = min(int_param(request.query, "limit", PAGE_LIMIT, minimum=1), PAGE_LIMIT)
    return start, limit


def _dataset_file(origin: str, batch: Batch, export_file: ExportFile, size: int) -> dict[str, Any]:
    written = str(batch.job.progress.updated_ms)
    return {
        "dataSetFileId": export_file.id,
        "dataSetViewId": batch.dataset_id,
        "version": "1.0.0",
        "created": written,
        "updated": written,
        "records": str(export_file.records),
        "size": str(size),
        "isValid": True,
        "_links": {"self": {"href": f"{origin}{PREFIX}/files/{export_file.id}"}},
    }


def _origin(request: web.Request) -> str:
    """Links point back at this emulator, so a client that follows them stays here."""
    return f"{request.scheme}://{request.host}"
