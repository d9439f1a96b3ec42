"""Catalog Service: /data/foundation/catalog (datasets and batches)."""

from __future__ import annotations

from aiohttp import web

from emulator.api.common import Call, json_response, read_json
from emulator.errors import BadRequest

PREFIX = "/data/foundation/catalog"


async def create_dataset(call: Call) -> web.Response:
    source = call.query.get("requestDataSource")
    if source is not None and source.lower() not in ("true", "false"):
        raise BadRequest(f"Query parameter 'requestDataSource' must be true or false, got '{source}'")
    body = await read_json(call, "dataset.create.request")
    dataset = call.backend.catalog.create_dataset(call.own_tenant, body, call.client_id)
    return json_response(
        [f"@/dataSets/{dataset.id}"],
        status=201,
        headers={"Location": f"{PREFIX}/dataSets/{dataset.id}"},
    )


async def list_datasets(call: Call) -> web.Response:
    query = call.query
    catalog = call.backend.catalog
    return json_response(catalog.list_datasets(call.own_tenant, query, query.getall("property", [])))


async def get_datasets(call: Call) -> web.Response:
    """One dataset, or several: `/dataSets/{id1},{id2}` (look-up-multiple-objects.md)."""
    catalog = call.backend.catalog
    ids = call.params["dataset_id"]
    return json_response(catalog.lookup_datasets(call.own_tenant, ids, call.query))


async def list_batches(call: Call) -> web.Response:
    query = call.query
    catalog = call.backend.catalog
    return json_response(await catalog.list_batches(call.own_tenant, query, query.getall("property", [])))


async def get_batches(call: Call) -> web.Response:
    """One batch, or several: `/batches/{id1},{id2}` (look-up-multiple-objects.md)."""
    catalog = call.backend.catalog
    ids = call.params["batch_id"]
    return json_response(await catalog.lookup_batches(call.own_tenant, ids, call.query))
