"""Data Access: /data/foundation/export (a batch's files, a file's listing, and its bytes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from emulator.api.common import Call, json_response
from emulator.api.ranges import byte_range, if_range_holds
from emulator.errors import BadRequest, NotFound
from emulator.params import int_param
from emulator.store import Batch

if TYPE_CHECKING:
    # Imported when first used (see Backend.exports): pyarrow is slow to import.
    from emulator.exportdata import ExportFile

PREFIX = "/data/foundation/export"
PAGE_LIMIT = 100  # Data Access's default and maximum page size


async def list_batch_files(call: Call) -> web.Response:
    backend = call.backend
    tenant = call.own_tenant
    start, limit = _page_params(call)
    batch_id = call.params["batch_id"]
    listed = await backend.exports.batch_files(tenant, batch_id, start, limit)
    batch, count = listed.batch, listed.count
    call.concerns(batch.job)
    await backend.faults.apply(backend.jobs.job_fault(batch.job, "list_batch_files"))
    origin = _origin(call)
    # Each entry's `size` is its file's bytes: a file not served yet is rendered (off the loop) to know it.
    sizes = [(await backend.exports.meta(batch, f)).length for f in listed.page]
    body: dict[str, Any] = {
        "data": [_dataset_file(origin, batch, f, size) for f, size in zip(listed.page, sizes, strict=True)],
        "_page": {"limit": limit, "count": count},
    }
    if start > 0 or count > limit or "limit" in call.query or "start" in call.query:
        page = f"{origin}{PREFIX}/batches/{quote(batch_id)}/files"
        links: dict[str, Any] = {"page": {"href": f"{page}?start={start}&limit={limit}", "templated": True}}
        if start + limit < count:
            links["next"] = {"href": f"{page}?start={start + limit}&limit={limit}"}
        body["_links"] = links
    return json_response(body)


async def get_file(call: Call) -> web.StreamResponse:
    """`?path=NAME`: the file's bytes (GET, with Range and If-Range) or headers (HEAD); without it, the
    listing. A file's bytes are rendered off the event loop; its length, once known, is not rendered again."""
    backend = call.backend
    tenant = call.own_tenant
    exports = backend.exports
    start, limit = _page_params(call)  # the listing's paging (checked with `path` too)
    batch, export_file = await exports.file(tenant, call.params["file_id"])
    call.concerns(batch.job)
    path = call.query.get("path")
    operation = "list_files" if path is None else "download_file"
    await backend.faults.apply(backend.jobs.job_fault(batch.job, operation))
    if path is None:
        if call.request.method == "HEAD":
            raise BadRequest("Query parameter 'path' is required for HEAD")
        return await _listing(call, batch, export_file, start, limit)
    if path != export_file.name:
        raise NotFound(f"File '{export_file.id}' has no path '{path}'.")
    # GET needs the bytes anyway (rendered once here, its length then known); HEAD only the length.
    content = None if call.request.method == "HEAD" else await exports.content(batch, export_file)
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
    if if_range_holds(call.headers.get("If-Range"), meta.etag, meta.last_modified):
        chosen = byte_range(call.headers.get("Range"), meta.length)
    if chosen is None:
        return web.Response(body=content, headers=headers)
    first, last = chosen
    headers["Content-Range"] = f"bytes {first}-{last}/{len(content)}"
    # A view, not a copy: a range of a 100 MB file is sent without duplicating it on the event loop.
    return web.Response(status=206, body=memoryview(content)[first : last + 1], headers=headers)


async def _listing(call: Call, batch: Batch, export_file: ExportFile, start: int, limit: int) -> web.Response:
    """A file is one entry (its one part); `start` and `limit` page it like any listing, `_page.limit`
    echoes the page size used."""
    length = (await call.backend.exports.meta(batch, export_file)).length
    href = f"{_origin(call)}{PREFIX}/files/{export_file.id}?path={quote(export_file.name)}"
    entries = [{"name": export_file.name, "length": str(length), "_links": {"self": {"href": href}}}]
    return json_response({"data": entries[start : start + limit], "_page": {"limit": limit, "count": 1}})


def _page_params(call: Call) -> tuple[int, int]:
    start = int_param(call.query, "start", 0)
    limit = min(int_param(call.query, "limit", PAGE_LIMIT, minimum=1), PAGE_LIMIT)
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


def _origin(call: Call) -> str:
    """Links point back at this emulator, so a client that follows them stays here."""
    return f"{call.request.scheme}://{call.request.host}"
