"""Catalog Service: /data/foundation/catalog (datasets and batches)."""

from __future__ import annotations

from aiohttp import web

from emulator.api.common import backend_of, concern, json_response, read_json
from emulator.catalog import batch_json, dataset_json, select_properties
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
    datasets = backend_of(request).catalog.datasets(tenant_of(request), request.query)
    return json_response({d.id: select_properties(dataset_json(d), request.query) for d in datasets})


async def get_dataset(request: web.Request) -> web.Response:
    dataset = backend_of(request).catalog.dataset(tenant_of(request), request.match_info["dataset_id"])
    return json_response({dataset.id: select_properties(dataset_json(dataset), request.query)})


async def list_batches(request: web.Request) -> web.Response:
    backend = backend_of(request)
    batches = backend.catalog.batches(tenant_of(request), request.query)
    await backend.prepare_record_counts(batches)  # counted off the event loop
    return json_response(
        {b.id: select_properties(batch_json(b, backend.record_count(b)), request.query) for b in batches}
    )


async def get_batch(request: web.Request) -> web.Response:
    backend = backend_of(request)
    batch = backend.catalog.batch(tenant_of(request), request.match_info["batch_id"])
    concern(request, batch.job)
    await backend.prepare_record_counts((batch,))  # counted off the event loop
    return json_response(
        {batch.id: select_properties(batch_json(batch, backend.record_count(batch)), request.query)}
    )
