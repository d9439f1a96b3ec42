"""Catalog Service: /data/foundation/catalog (datasets and batches)."""

from __future__ import annotations

from aiohttp import web

from emulator.api.common import backend_of, json_response, read_json
from emulator.errors import BadRequest
from emulator.gateway import CLIENT_ID, tenant_of

PREFIX = "/data/foundation/catalog"


async def create_dataset(request: web.Request) -> web.Response:
    source = request.query.get("requestDataSource")
    if source is not None and source.lower() not in ("true", "false"):
        raise BadRequest(f"Query parameter 'requestDataSource' must be true or false, got '{source}'")
    body = await read_json(request, "dataset.create.request")
    dataset = backend_of(request).catalog.create_dataset(tenant_of(request), body, request[CLIENT_ID])
    return json_response(
        [f"@/dataSets/{dataset.id}"],
        status=201,
        headers={"Location": f"{PREFIX}/dataSets/{dataset.id}"},
    )


async def list_datasets(request: web.Request) -> web.Response:
    query = request.query
    catalog = backend_of(request).catalog
    return json_response(catalog.list_datasets(tenant_of(request), query, query.getall("property", [])))


async def get_datasets(request: web.Request) -> web.Response:
    """One dataset, or several: `/dataSets/{id1},{id2}` (look-up-multiple-objects.md)."""
    catalog = backend_of(request).catalog
    ids = request.match_info["dataset_id"]
    return json_response(catalog.lookup_datasets(tenant_of(request), ids, request.query))


async def list_batches(request: web.Request) -> web.Response:
    query = request.query
    catalog = backend_of(request).catalog
    return json_response(await catalog.list_batches(tenant_of(request), query, query.getall("property", [])))


async def get_batches(request: web.Request) -> web.Response:
    """One batch, or several: `/batches/{id1},{id2}` (look-up-multiple-objects.md)."""
    catalog = backend_of(request).catalog
    ids = request.match_info["batch_id"]
    return json_response(await catalog.lookup_batches(tenant_of(request), ids, request.query))
