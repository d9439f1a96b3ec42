"""The Profile API's merge policies: /data/core/ups/config/mergePolicies."""

from __future__ import annotations

from aiohttp import web

from emulator.api.common import backend_of, json_response, read_json
from emulator.gateway import tenant_of
from emulator.merge_policies import next_href, policy_json

PREFIX = "/data/core/ups/config/mergePolicies"
MULTI_STATUS = 207


async def list_policies(request: web.Request) -> web.Response:
    page = backend_of(request).merge_policies.list(tenant_of(request), request.query)
    return json_response(
        {
            "_page": {"totalCount": page.total, "pageSize": len(page.policies)},
            "children": [policy_json(p) for p in page.policies],
            "_links": {"next": {"href": next_href(page)}},
        }
    )


async def create_policy(request: web.Request) -> web.Response:
    body = await read_json(request, "merge-policy.create.request")
    policy = backend_of(request).merge_policies.create(tenant_of(request), body)
    return json_response(policy_json(policy))


async def get_policy(request: web.Request) -> web.Response:
    policy = backend_of(request).merge_policies.get(tenant_of(request), request.match_info["policy_id"])
    return json_response(policy_json(policy))


async def patch_policy(request: web.Request) -> web.Response:
    body = await read_json(request, "merge-policy.patch.request")
    policy_id = request.match_info["policy_id"]
    policy = backend_of(request).merge_policies.patch(tenant_of(request), policy_id, body)
    return json_response(policy_json(policy))


async def delete_policy(request: web.Request) -> web.Response:
    backend_of(request).merge_policies.delete(tenant_of(request), request.match_info["policy_id"])
    return web.Response(status=200)  # the Profile API answers an empty body


async def bulk_get_policies(request: web.Request) -> web.Response:
    body = await read_json(request, "bulk-get.request")
    found = backend_of(request).merge_policies.bulk_get(tenant_of(request), body)
    return json_response({"results": {p.id: policy_json(p) for p in found}}, status=MULTI_STATUS)
