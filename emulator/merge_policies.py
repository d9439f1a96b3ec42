"""Merge policies (/data/core/ups/config/mergePolicies): each tenant starts with one default policy.

The emulator's population is already one merged profile per person, so a policy changes no exported value;
what matters to a client is that ids are checked (a definition's `mergePolicyId`, an export's
`mergePolicy.id`) and that the policy objects behave as the Profile API documents them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.clock import Clock
from emulator.errors import BadRequest, NotFound
from emulator.params import int_param, optional_int
from emulator.sandboxes import sandbox_json
from emulator.store import Tenant

PROFILE_SCHEMA = "_xdm.context.profile"
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
MAX_PER_TENANT = 10_000
DEFAULT_NAME = "Default Timebased"
# JSON Patch paths the Profile API documents for PATCH, and the body keys they change.
PATCH_PATHS = {
    "/name": ("name",),
    "/default": ("default",),
    "/version": ("version",),
    "/identityGraph.type": ("identityGraph", "type"),
    "/identityGraph/type": ("identityGraph", "type"),
    "/attributeMerge.type": ("attributeMerge", "type"),
    "/attributeMerge/type": ("attributeMerge", "type"),
    "/attributeMerge/order": ("attributeMerge", "order"),
    "/schema.name": ("schema", "name"),
    "/schema/name": ("schema", "name"),
    "/isActiveOnEdge": ("isActiveOnEdge",),
}
_ORDER_FIELDS = {"name", "updateEpoch", "version", "id"}


@dataclass
class MergePolicy:
    id: str
    tenant: Tenant
    body: dict[str, Any]  # name, schema, identityGraph, attributeMerge, default, isActiveOnEdge, version
    updated_ms: int

    @property
    def schema_name(self) -> str:
        return str(self.body["schema"].get("name", PROFILE_SCHEMA))


@dataclass(frozen=True)
class PolicyPage:
    policies: list[MergePolicy]
    total: int
    next_start: int | None
    query: Mapping[str, str] = field(default_factory=dict)


class MergePolicies:
    def __init__(self, clock: Clock):
        self.clock = clock
        self._tenants: dict[Tenant, dict[str, MergePolicy]] = {}

    def reset(self, tenant: Tenant | None = None) -> None:
        if tenant is None:
            self._tenants.clear()
        else:
            self._tenants.pop(tenant, None)

    def _policies(self, tenant: Tenant) -> dict[str, MergePolicy]:
        """The tenant's policies; the first look makes its default policy."""
        policies = self._tenants.get(tenant)
        if policies is None:
            default = self._default_policy(tenant)
            policies = self._tenants[tenant] = {default.id: default}
        return policies

    def _default_policy(self, tenant: Tenant) -> MergePolicy:
        body = {
            "name": DEFAULT_NAME,
            "schema": {"name": PROFILE_SCHEMA},
            "identityGraph": {"type": "pdg"},
            "attributeMerge": {"type": "timestampOrdered"},
            "default": True,
            "isActiveOnEdge": False,
            "version": 1,
        }
        return MergePolicy(default_policy_id(tenant), tenant, body, self.clock.start_ms)

    # -- commands

    def create(self, tenant: Tenant, request: dict[str, Any]) -> MergePolicy:
        """A policy from a request validated against merge-policy.create.request."""
        policies = self._policies(tenant)
        if len(policies) >= MAX_PER_TENANT:
            raise BadRequest(f"A sandbox holds at most {MAX_PER_TENANT} merge policies in the emulator")
        body = {
            "name": request["name"],
            "schema": dict(request.get("schema") or {"name": PROFILE_SCHEMA}),
            "identityGraph": dict(request["identityGraph"]),
            "attributeMerge": dict(request["attributeMerge"]),
            "default": bool(request.get("default", False)),
            "isActiveOnEdge": bool(request.get("isActiveOnEdge", False)),
            "version": 1,
        }
        _check_attribute_merge(body["attributeMerge"])
        policy = MergePolicy(str(uuid.uuid4()), tenant, body, self.clock.now_ms())
        policies[policy.id] = policy
        if body["default"]:
            self._only_default(policy)
        return policy

    def patch(self, tenant: Tenant, policy_id: str, operations: Any) -> MergePolicy:
        """JSON Patch operations (one object or a list) on the documented paths; the version goes up."""
        policy = self.get(tenant, policy_id)
        ops = operations if isinstance(operations, list) else [operations]
        body = {key: dict(value) if isinstance(value, dict) else value for key, value in policy.body.items()}
        for index, op in enumerate(ops):
            where = f"$[{index}]" if isinstance(operations, list) else "$"
            keys = PATCH_PATHS.get(op["path"])
            if keys is None:
                raise BadRequest(
                    f"Invalid request body: {where}.path: '{op['path']}' cannot be changed; "
                    f"paths: {', '.join(sorted(PATCH_PATHS))}"
                )
            if op["op"] not in ("add", "replace"):
                raise BadRequest(f"Invalid request body: {where}.op: only add and replace change a policy")
            _assign(body, keys, _coerced(keys, op.get("value"), f"{where}.value"))
        _check_attribute_merge(body["attributeMerge"])
        if body["default"] is False and policy.body["default"] is True:
            raise BadRequest(
                f"Merge policy '{policy_id}' is the default; make another policy the default instead"
            )
        explicit_version = any(PATCH_PATHS.get(op["path"]) == ("version",) for op in ops)
        if not explicit_version:
            body["version"] = int(policy.body["version"]) + 1
        policy.body = body
        policy.updated_ms = self.clock.now_ms()
        if body["default"]:
            self._only_default(policy)
        return policy

    def delete(self, tenant: Tenant, policy_id: str) -> None:
        policy = self.get(tenant, policy_id)
        if policy.body["default"]:
            raise BadRequest(
                f"Merge policy '{policy_id}' is the default for {policy.schema_name}; make another policy "
                "the default before deleting it"
            )
        del self._policies(tenant)[policy_id]

    def _only_default(self, policy: MergePolicy) -> None:
        """A schema has one default policy: setting one unsets the previous default."""
        for other in self._policies(policy.tenant).values():
            if other is not policy and other.body["default"] and other.schema_name == policy.schema_name:
                other.body = {**other.body, "default": False}
                other.updated_ms = self.clock.now_ms()

    # -- queries

    def get(self, tenant: Tenant, policy_id: str) -> MergePolicy:
        policy = self._policies(tenant).get(policy_id)
        if policy is None:
            raise NotFound(f"Merge policy '{policy_id}' was not found")
        return policy

    def default_id(self, tenant: Tenant, schema_name: str = PROFILE_SCHEMA) -> str:
        for policy in self._policies(tenant).values():
            if policy.body["default"] and policy.schema_name == schema_name:
                return policy.id
        return default_policy_id(tenant)

    def check(self, tenant: Tenant, policy_id: str, where: str) -> None:
        """400 for an id that is not one of the tenant's policies (as a bad reference in a request)."""
        if policy_id not in self._policies(tenant):
            known = ", ".join(list(self._policies(tenant))[:5])
            raise BadRequest(
                f"{where}: merge policy '{policy_id}' does not exist in org '{tenant.org}', sandbox "
                f"'{tenant.sandbox}' (its merge policies: {known}; GET /data/core/ups/config/mergePolicies)"
            )

    def version(self, tenant: Tenant, policy_id: str) -> int:
        return int(self.get(tenant, policy_id).body["version"])

    def bulk_get(self, tenant: Tenant, body: Any) -> list[MergePolicy]:
        """The tenant's policies among a bulk-get body's ids (unknown ids are left out)."""
        policies = self._policies(tenant)
        return [policies[i] for i in dict.fromkeys(ids_of(body)) if i in policies]

    def list(self, tenant: Tenant, query: Mapping[str, str]) -> PolicyPage:
        limit = min(int_param(query, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
        start = int_param(query, "start", 0, minimum=0)
        optional_int(query, "version", minimum=1)  # a number, or a 400
        chosen = list(self._policies(tenant).values())
        filters: dict[str, Callable[[MergePolicy, str], bool]] = {
            "default": lambda p, v: str(p.body["default"]).lower() == v.lower(),
            "schema.name": lambda p, v: p.schema_name == v,
            "identityGraph.type": lambda p, v: p.body["identityGraph"].get("type") == v,
            "attributeMerge.type": lambda p, v: p.body["attributeMerge"].get("type") == v,
            "version": lambda p, v: str(p.body["version"]) == v,
        }
        for name, test in filters.items():
            wanted = query.get(name)
            if wanted:
                if name == "default" and wanted.lower() not in ("true", "false"):
                    raise BadRequest(f"Query parameter 'default' must be true or false, got '{wanted}'")
                chosen = [p for p in chosen if test(p, wanted)]
        order = query.get("orderBy") or "name"
        descending = order.startswith("-")
        key = order.lstrip("+-")
        if key not in _ORDER_FIELDS:
            raise BadRequest(
                f"Query parameter 'orderBy' must be [+|-]{'|'.join(sorted(_ORDER_FIELDS))}, got '{order}'"
            )
        chosen.sort(key=lambda p: _order_key(p, key), reverse=descending)
        page = chosen[start : start + limit]
        following = start + limit if start + limit < len(chosen) else None
        return PolicyPage(page, len(chosen), following, query)

    # -- state file

    def state(self) -> dict[str, Any]:
        return {
            "tenants": [
                {
                    "org": tenant.org,
                    "sandbox": tenant.sandbox,
                    "policies": [
                        {"id": p.id, "body": p.body, "updatedMs": p.updated_ms} for p in policies.values()
                    ],
                }
                for tenant, policies in self._tenants.items()
            ]
        }

    def restore(self, state: Mapping[str, Any]) -> Callable[[], None]:
        tenants: dict[Tenant, dict[str, MergePolicy]] = {}
        for saved in state.get("tenants", []):
            tenant = Tenant(str(saved["org"]), str(saved["sandbox"]))
            policies: dict[str, MergePolicy] = {}
            for raw in saved["policies"]:
                body = raw["body"]
                if not isinstance(body, dict) or not isinstance(body.get("schema"), dict):
                    raise TypeError(f"merge policy {raw.get('id')}: body is not a merge policy")
                policies[str(raw["id"])] = MergePolicy(str(raw["id"]), tenant, body, int(raw["updatedMs"]))
            tenants[tenant] = policies

        def commit() -> None:
            self._tenants = tenants

        return commit


def ids_of(body: Any) -> list[str]:
    """The ids of a bulk-get body: `{"ids": [{"id"}...]}` as documented, or a plain list of ids or of
    `{"id"}` objects (what aepp's bulk-get methods send when given a list)."""
    items = body["ids"] if isinstance(body, dict) else body
    return [str(item["id"]) if isinstance(item, dict) else str(item) for item in items]


def default_policy_id(tenant: Tenant) -> str:
    """The id of a tenant's initial default policy: stable across restarts and resets."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aep-emulator/merge-policy/{tenant.org}/{tenant.sandbox}"))


def policy_json(policy: MergePolicy) -> dict[str, Any]:
    body = policy.body
    return {
        "id": policy.id,
        "name": body["name"],
        "imsOrgId": policy.tenant.org,
        "sandbox": sandbox_json(policy.tenant),
        "schema": body["schema"],
        "version": body["version"],
        "identityGraph": body["identityGraph"],
        "attributeMerge": body["attributeMerge"],
        "isActiveOnEdge": body.get("isActiveOnEdge", False),
        "default": body["default"],
        "updateEpoch": policy.updated_ms // 1000,
    }


def next_href(page: PolicyPage) -> str:
    """Relative, like the Profile API's `@/mergePolicies?start=...`; "" on the last page."""
    if page.next_start is None:
        return ""
    kept = {k: v for k, v in page.query.items() if k not in ("start", "limit")}
    extra = "".join(f"&{k}={v}" for k, v in kept.items())
    limit = page.query.get("limit") or str(DEFAULT_LIMIT)
    return f"@/mergePolicies?start={page.next_start}&limit={limit}{extra}"


def _check_attribute_merge(merge: dict[str, Any]) -> None:
    if merge.get("type") == "dataSetPrecedence" and not merge.get("order"):
        raise BadRequest(
            "Invalid request body: $.attributeMerge.order: dataSetPrecedence needs the datasets in order"
        )


def _coerced(keys: tuple[str, ...], value: Any, where: str) -> Any:
    """The documented example sends `"true"` for /default: booleans may come as strings."""
    if keys in (("default",), ("isActiveOnEdge",)):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise BadRequest(f"Invalid request body: {where}: must be true or false")
        return value
    if keys == ("version",):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(f"Invalid request body: {where}: must be an integer >= 1")
        return value
    if keys == ("identityGraph", "type") and value not in ("none", "pdg"):
        raise BadRequest(f"Invalid request body: {where}: must be none or pdg")
    if keys == ("attributeMerge", "type") and value not in ("timestampOrdered", "dataSetPrecedence"):
        raise BadRequest(f"Invalid request body: {where}: must be timestampOrdered or dataSetPrecedence")
    if keys == ("attributeMerge", "order"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadRequest(f"Invalid request body: {where}: must be an array of dataset ids")
        return value
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Invalid request body: {where}: must be a non-empty string")
    return value


def _assign(body: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    target = body
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


def _order_key(policy: MergePolicy, key: str) -> Any:
    if key == "id":
        return policy.id
    if key == "updateEpoch":
        return policy.updated_ms
    if key == "version":
        return int(policy.body["version"])
    return (str(policy.body["name"]).lower(), policy.id)
