"""Segment definitions (/data/core/ups/segment/definitions): PQL expressions, compiled when saved.

A definition whose expression does not parse is refused (400, naming line and column). One that parses is
kept with its `Rule`: the predicate the emulator evaluates over the tenant's population, or, outside the
evaluated subset, the reason why, in which case its members come from the deterministic hash that segment
ids without a definition use (logged once per expression, and shown by the control plane).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.clock import Clock
from emulator.errors import BadRequest, NotFound, Unprocessable
from emulator.merge_policies import PROFILE_SCHEMA, MergePolicies, ids_of
from emulator.params import int_param
from emulator.sandboxes import sandbox_json
from emulator.store import Tenant

if TYPE_CHECKING:
    from emulator.pql import Rule

log = logging.getLogger("emulator.segments")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_PER_TENANT = 10_000
SORT_FIELDS = ("creationTime", "updateTime", "name", "id")
EVALUATION_KINDS = ("batch", "continuous", "synchronous")
# Fields a client may set; the rest (id, imsOrgId, sandbox, times) are the service's.
WRITABLE = (
    "name",
    "description",
    "expression",
    "schema",
    "mergePolicyId",
    "evaluationInfo",
    "ttlInDays",
    "profileInstanceId",
    "payloadSchema",
    "dataGovernancePolicy",
    "labels",
)
_MAX_WARNED = 10_000


@dataclass
class Definition:
    id: str
    tenant: Tenant
    body: dict[str, Any]  # the WRITABLE fields, defaults filled in
    rule: Rule
    created_ms: int
    updated_ms: int

    @property
    def expression(self) -> dict[str, str]:
        expression: dict[str, str] = self.body["expression"]
        return expression


@dataclass(frozen=True)
class DefinitionPage:
    definitions: list[Definition]
    total: int
    skip: int
    limit: int
    sort: tuple[tuple[str, bool], ...]  # (field, descending)


class SegmentDefinitions:
    def __init__(self, clock: Clock, merge_policies: MergePolicies):
        self.clock = clock
        self.merge_policies = merge_policies
        self._tenants: dict[Tenant, dict[str, Definition]] = {}
        self._warned: set[str] = set()

    def reset(self, tenant: Tenant | None = None) -> None:
        if tenant is None:
            self._tenants.clear()
            self._warned.clear()
        else:
            self._tenants.pop(tenant, None)

    # -- commands

    def create(self, tenant: Tenant, request: dict[str, Any]) -> Definition:
        """A definition from a request validated against segment-definition.create.request."""
        definitions = self._tenants.setdefault(tenant, {})
        if len(definitions) >= MAX_PER_TENANT:
            raise BadRequest(f"A sandbox holds at most {MAX_PER_TENANT} segment definitions in the emulator")
        body = self._body(tenant, {key: request[key] for key in WRITABLE if key in request})
        self._unique_name(tenant, body["name"], None)
        rule = self._compile(body["expression"])
        now = self.clock.now_ms()
        definition = Definition(str(uuid.uuid4()), tenant, body, rule, now, now)
        definitions[definition.id] = definition
        self._warn(definition)
        return definition

    def patch(self, tenant: Tenant, definition_id: str, request: dict[str, Any]) -> Definition:
        """Replace the fields the request sets (read-only ones are ignored; a different `id` is a 400)."""
        definition = self.get(tenant, definition_id)
        if "id" in request and request["id"] != definition_id:
            raise BadRequest(f"Invalid request body: $.id: '{request['id']}' is not '{definition_id}'")
        changes = {key: request[key] for key in WRITABLE if key in request}
        body = self._body(tenant, {**definition.body, **changes})
        self._unique_name(tenant, body["name"], definition_id)
        rule = self._compile(body["expression"]) if "expression" in changes else definition.rule
        definition.body, definition.rule = body, rule
        definition.updated_ms = max(self.clock.now_ms(), definition.created_ms)
        self._warn(definition)
        return definition

    def delete(self, tenant: Tenant, definition_id: str) -> None:
        self.get(tenant, definition_id)
        del self._tenants[tenant][definition_id]

    def _body(self, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
        policy = body.get("mergePolicyId")
        if policy is None:
            body["mergePolicyId"] = self.merge_policies.default_id(tenant)
        else:
            self.merge_policies.check(tenant, policy, "Invalid request body: $.mergePolicyId")
        evaluation = body.get("evaluationInfo") or {}
        if not any(evaluation.get(kind, {}).get("enabled") for kind in EVALUATION_KINDS):
            evaluation = {**evaluation, "batch": {"enabled": True}}  # AEP: a batch segment by default
        body["evaluationInfo"] = {
            kind: {**evaluation.get(kind, {}), "enabled": bool(evaluation.get(kind, {}).get("enabled"))}
            for kind in EVALUATION_KINDS
        }
        body.setdefault("description", "")
        body.setdefault("profileInstanceId", "ups")
        body.setdefault("dataGovernancePolicy", {"excludeOptOut": True})
        return body

    def _unique_name(self, tenant: Tenant, name: str, own_id: str | None) -> None:
        for other in self._tenants.get(tenant, {}).values():
            if other.body["name"] == name and other.id != own_id:
                raise Unprocessable(
                    f"A segment definition named '{name}' already exists ({other.id}); names are unique "
                    "in a sandbox: PATCH it to change it"
                )

    def _compile(self, expression: Mapping[str, Any]) -> Rule:
        # Imported here: the grammar and the syntax tree classes cost a server's cold start ~20 ms, and
        # most servers never see a definition.
        from emulator.pql import PqlSyntaxError, compile_expression

        try:
            return compile_expression(
                str(expression["value"]), str(expression["format"]), kind=str(expression["type"])
            )
        except PqlSyntaxError as exc:
            raise BadRequest(f"Invalid PQL in $.expression.value: {exc}") from None

    def _warn(self, definition: Definition) -> None:
        text = definition.expression["value"]
        if definition.rule.evaluated or text in self._warned:
            return
        if len(self._warned) < _MAX_WARNED:
            self._warned.add(text)
        log.warning(
            "segment definition %s (%r): the expression is outside the PQL subset the emulator evaluates "
            "(%s); its members come from the deterministic hash instead",
            definition.id,
            definition.body["name"],
            definition.rule.reason,
        )

    # -- queries

    def get(self, tenant: Tenant, definition_id: str) -> Definition:
        definition = self._tenants.get(tenant, {}).get(definition_id)
        if definition is None:
            raise NotFound(f"Segment definition '{definition_id}' was not found")
        return definition

    def find(self, tenant: Tenant, definition_id: str) -> Definition | None:
        return self._tenants.get(tenant, {}).get(definition_id)

    def of_tenant(self, tenant: Tenant) -> list[Definition]:
        return list(self._tenants.get(tenant, {}).values())

    def all(self) -> Iterable[Definition]:
        for definitions in self._tenants.values():
            yield from definitions.values()

    def snapshot(self, tenant: Tenant, ids: list[str]) -> tuple[tuple[str, str, str, str], ...]:
        """(id, type, format, value) of the definitions among `ids`, for a job to keep."""
        definitions = self._tenants.get(tenant, {})
        return tuple(
            (i, str(e["type"]), str(e["format"]), str(e["value"]))
            for i in dict.fromkeys(ids)
            if i in definitions
            for e in (definitions[i].expression,)
        )

    def bulk_get(self, tenant: Tenant, body: Any) -> list[Definition]:
        """The tenant's definitions among a bulk-get body's ids (unknown ids are left out)."""
        definitions = self._tenants.get(tenant, {})
        return [definitions[i] for i in dict.fromkeys(ids_of(body)) if i in definitions]

    def list(self, tenant: Tenant, query: Mapping[str, str]) -> DefinitionPage:
        limit = min(int_param(query, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
        skip = int_param(query, "start", 0, minimum=0) + int_param(query, "page", 0, minimum=0) * limit
        chosen = self.of_tenant(tenant)
        for kind in EVALUATION_KINDS:
            wanted = query.get(f"evaluationInfo.{kind}.enabled")
            if wanted:
                if wanted.lower() not in ("true", "false"):
                    raise BadRequest(
                        f"Query parameter 'evaluationInfo.{kind}.enabled' must be true or false, "
                        f"got '{wanted}'"
                    )
                flag = wanted.lower() == "true"
                chosen = [d for d in chosen if d.body["evaluationInfo"][kind]["enabled"] is flag]
        if query.get("name"):
            chosen = [d for d in chosen if d.body["name"] == query["name"]]
        sort = _parse_sort(query.get("sort") or "creationTime:desc")
        for field, descending in reversed(sort):
            chosen.sort(key=lambda d, f=field: _sort_key(d, f), reverse=descending)  # type: ignore[misc]
        return DefinitionPage(chosen[skip : skip + limit], len(chosen), skip, limit, sort)

    # -- state file

    def state(self) -> dict[str, Any]:
        return {
            "tenants": [
                {
                    "org": tenant.org,
                    "sandbox": tenant.sandbox,
                    "definitions": [
                        {"id": d.id, "body": d.body, "createdMs": d.created_ms, "updatedMs": d.updated_ms}
                        for d in definitions.values()
                    ],
                }
                for tenant, definitions in self._tenants.items()
                if definitions
            ]
        }

    def restore(self, state: Mapping[str, Any]) -> Callable[[], None]:
        """Expressions are compiled again (the grammar may evaluate more than when they were saved)."""
        tenants: dict[Tenant, dict[str, Definition]] = {}
        for saved in state.get("tenants", []):
            tenant = Tenant(str(saved["org"]), str(saved["sandbox"]))
            definitions: dict[str, Definition] = {}
            for raw in saved["definitions"]:
                body = raw["body"]
                if not isinstance(body, dict) or not isinstance(body.get("expression"), dict):
                    raise TypeError(f"segment definition {raw.get('id')}: body is not a definition")
                try:
                    rule = self._compile(body["expression"])
                except BadRequest as exc:
                    raise ValueError(f"segment definition {raw.get('id')}: {exc.detail}") from None
                definition = Definition(
                    str(raw["id"]), tenant, body, rule, int(raw["createdMs"]), int(raw["updatedMs"])
                )
                definitions[definition.id] = definition
            tenants[tenant] = definitions

        def commit() -> None:
            self._tenants = tenants

        return commit


def definition_json(definition: Definition) -> dict[str, Any]:
    body = definition.body
    shown: dict[str, Any] = {
        "id": definition.id,
        "schema": body.get("schema") or {"name": PROFILE_SCHEMA},
        "profileInstanceId": body["profileInstanceId"],
        "imsOrgId": definition.tenant.org,
        "sandbox": sandbox_json(definition.tenant),
        "name": body["name"],
        "description": body["description"],
        "expression": body["expression"],
        "mergePolicyId": body["mergePolicyId"],
        "evaluationInfo": body["evaluationInfo"],
        "dataGovernancePolicy": body["dataGovernancePolicy"],
    }
    for optional in ("ttlInDays", "payloadSchema", "labels"):
        if optional in body:
            shown[optional] = body[optional]
    shown["creationTime"] = definition.created_ms
    shown["updateEpoch"] = definition.updated_ms // 1000
    shown["updateTime"] = definition.updated_ms
    return shown


def membership_json(definition: Definition) -> dict[str, Any]:
    """What the control plane says of a definition: whether its PQL is evaluated, and if not, why."""
    rule = definition.rule
    shown: dict[str, Any] = {
        "id": definition.id,
        "name": definition.body["name"],
        "tenant": {"org": definition.tenant.org, "sandbox": definition.tenant.sandbox},
        "expression": definition.expression,
        "membership": "pql" if rule.evaluated else "hash",
    }
    if rule.reason is not None:
        shown["reason"] = rule.reason
    return shown


def next_link(page: DefinitionPage) -> str:
    following = page.skip + page.limit
    if following >= page.total:
        return ""
    sort = ",".join(f"{field}:{'desc' if descending else 'asc'}" for field, descending in page.sort)
    return f"/segment/definitions?start={following}&limit={page.limit}&sort={sort}"


def _parse_sort(raw: str) -> tuple[tuple[str, bool], ...]:
    keys: list[tuple[str, bool]] = []
    for part in raw.split(","):
        field, _, direction = part.strip().partition(":")
        if field not in SORT_FIELDS or direction not in ("", "asc", "desc"):
            raise BadRequest(
                f"Query parameter 'sort' must be {'|'.join(SORT_FIELDS)}[:asc|:desc] (comma-separated), "
                f"got '{raw}'"
            )
        keys.append((field, direction == "desc"))
    return tuple(keys)


def _sort_key(definition: Definition, field: str) -> Any:
    if field == "creationTime":
        return (definition.created_ms, definition.id)
    if field == "updateTime":
        return (definition.updated_ms, definition.id)
    if field == "name":
        return (str(definition.body["name"]).lower(), definition.id)
    return definition.id
