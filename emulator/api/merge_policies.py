"""The Profile API's merge policies: /data/core/ups/config/mergePolicies."""

from __future__ import annotations

from aiohttp import web

from emulator.api.common import Call, json_response, read_json
from emulator.merge_policies import next_href, policy_json

PREFIX = "/data/core/ups/config/mergePolicies"
MULTI_STATUS = 207


async def list_policies(call: Call) -> web.Response:
    page = call.backend.merge_policies.list(call.own_tenant, call.query)
    return json_response(
        {
            "_page": {"totalCount": page.total, "pageSize": len(page.policies)},
            "children": [policy_json(p) for p in page.policies],
            "_links": {"next": {"href": next_href(page)}},
        }
    )


async def create_policy(call: Call) -> web.Response:
    body = await read_json(call, "merge-policy.create.request")
    policy = call.backend.merge_policies.create(call.own_tenant, body)
    return json_response(policy_json(policy))


async def get_policy(call: Call) -> web.Response:
    policy = call.backend.merge_policies.get(call.own_tenant, call.params["policy_id"])
    return json_response(policy_json(policy))


async def patch_policy(call: Call) -> web.Response:
    body = await read_json(call, "merge-policy.patch.request")
    policy_id = call.params["policy_id"]
    policy = call.backend.merge_policies.patch(call.own_tenant, policy_id, body)
    return json_response(policy_json(policy))


async def delete_policy(call: Call) -> web.Response:
    call.backend.merge_policies.delete(call.own_tenant, call.params["policy_id"])
    return web.Response(status=200)  # the Profile API answers an empty body


async def bulk_get_policies(call: Call) -> web.Response:
    body = await read_json(call, "bulk-get.request")
    found = call.backend.merge_policies.bulk_get(call.own_tenant, body)
    return json_response({"results": {p.id: policy_json(p) for p in found}}, status=MULTI_STATUS)
