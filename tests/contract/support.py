"""The contract suite's oracle and targets.

The oracle is the OpenAPI document the emulator serves (built from `schemas/`): a reply to an operation must
have a documented status, the documented headers and content type, and a body matching the documented schema.

A target is what the suite talks to: the emulator in process (`EmulatorTarget`), or a real AEP sandbox
(`AepTarget`, drift mode) configured by AEP_DRIFT_* environment variables. Against AEP, the suite only reads,
or (with AEP_DRIFT_ALLOW_WRITES=1) creates objects it deletes again, and it tolerates fields the emulator
does not model: a drift failure means AEP lacks, renames or retypes something the emulator promises.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from emulator.app import ROUTES, create_app
from emulator.openapi import build
from emulator.options import Options
from tests.conftest import ORG, PROFILE_UNION, START_MS, ClientFactory, aep_headers

DOCUMENT_URI = "urn:aep-emulator:openapi"
JOBS = "/data/core/ups/export/jobs"
DATASETS = "/data/foundation/catalog/dataSets"
BATCHES = "/data/foundation/catalog/batches"
EXPORT = "/data/foundation/export"
TOKEN = "/ims/token/v3"
JSON_TYPES = ("application/json",)

DRIFT_REQUIRED = (
    "AEP_DRIFT_BASE_URL",
    "AEP_DRIFT_IMS_URL",
    "AEP_DRIFT_CLIENT_ID",
    "AEP_DRIFT_CLIENT_SECRET",
    "AEP_DRIFT_ORG_ID",
)
DEFAULT_SCOPES = "openid,AdobeID,read_organizations,additional_info.projectedProductContext,session"


@cache
def document() -> dict[str, Any]:
    return build([(method, path) for method, path, _ in ROUTES])


# -- replies and the oracle -----------------------------------------------------------------------


@dataclass
class Reply:
    method: str
    path: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status} {self.content_type} {self.body[:600]!r}"


class Contract:
    """What the OpenAPI document promises for each (operationId, status)."""

    def __init__(self, doc: Mapping[str, Any], *, relaxed: bool = False):
        # Relaxed (drift mode): AEP may show fields the emulator does not model.
        self.doc: dict[str, Any] = _open_objects(copy.deepcopy(dict(doc))) if relaxed else dict(doc)
        self.registry: Registry[Any] = Registry().with_resource(
            DOCUMENT_URI, Resource.from_contents(self.doc, default_specification=DRAFT202012)
        )
        self.operations: dict[str, tuple[str, str, dict[str, Any]]] = {
            op["operationId"]: (method.upper(), path, op)
            for path, item in self.doc["paths"].items()
            for method, op in item.items()
        }

    def pairs(self) -> set[tuple[str, int]]:
        return {
            (op_id, int(status))
            for op_id, (_, _, op) in self.operations.items()
            for status in op["responses"]
        }

    def response(self, operation_id: str, status: int) -> dict[str, Any]:
        _, _, op = self.operations[operation_id]
        response: dict[str, Any] = op["responses"][str(status)]
        if "$ref" in response:
            response = self._resolve(response["$ref"])
        return response

    def check(self, operation_id: str, reply: Reply) -> None:
        """Fail with every way `reply` breaks the documented response of its operation and status."""
        method, _, op = self.operations[operation_id]
        assert str(reply.status) in op["responses"], (
            f"{operation_id}: status {reply.status} is not documented ({sorted(op['responses'])}): {reply}"
        )
        response = self.response(operation_id, reply.status)
        problems: list[str] = []
        for name, header in response.get("headers", {}).items():
            header = self._resolve(header["$ref"]) if "$ref" in header else header
            value = reply.headers.get(name)
            if value is None:
                if header.get("required"):
                    problems.append(f"header {name} is missing")
                continue
            problems += [f"header {name}: {e}" for e in self.schema_errors(header["schema"], value)]
        content: dict[str, Any] = response.get("content", {})
        if method == "HEAD" or not content:
            if reply.body:
                problems.append("a body where none is documented")
        elif reply.content_type not in content:
            problems.append(f"content type {reply.content_type!r} is not one of {sorted(content)}")
        elif reply.content_type in JSON_TYPES and "schema" in content[reply.content_type]:
            try:
                body = reply.json()
            except ValueError as exc:
                problems.append(f"the body is not JSON: {exc}")
            else:
                problems += self.schema_errors(content[reply.content_type]["schema"], body)
        assert not problems, f"{operation_id} {reply.status} breaks the contract: {problems}\n{reply}"

    def schema_errors(self, schema: Mapping[str, Any], instance: Any) -> list[str]:
        # The schema's refs ("#/components/...") point into the document, which the registry holds.
        validator = Draft202012Validator(_absolute(schema), registry=self.registry)
        return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(instance)]

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return dict(node)


def _absolute(node: Any) -> Any:
    if isinstance(node, list):
        return [_absolute(item) for item in node]
    if isinstance(node, dict):
        return {
            key: DOCUMENT_URI + value if key == "$ref" and value.startswith("#") else _absolute(value)
            for key, value in node.items()
        }
    return node


def _open_objects(node: Any) -> Any:
    """The document without `additionalProperties: false` / `unevaluatedProperties: false`."""
    if isinstance(node, list):
        return [_open_objects(item) for item in node]
    if isinstance(node, dict):
        return {
            key: _open_objects(value)
            for key, value in node.items()
            if not (key in ("additionalProperties", "unevaluatedProperties") and value is False)
        }
    return node


# -- targets --------------------------------------------------------------------------------------


class Target(ABC):
    """Talks to the emulator or to AEP with a client's usual headers, and finds or makes objects to read."""

    name = "target"
    drift = False
    allow_writes = True

    def __init__(self, contract: Contract):
        self.contract = contract
        self._cleanups: list[Callable[[], Awaitable[None]]] = []

    @abstractmethod
    def headers(self, **extra: str) -> dict[str, str]:
        """The headers a client sends to the AEP paths, plus `extra`."""

    @abstractmethod
    async def send(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None, params: Any
    ) -> Reply:
        """One HTTP exchange."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | str | None = None,
        params: Any = None,
        drop: tuple[str, ...] = (),
    ) -> Reply:
        """`headers` add to (or replace) the client's usual ones; `drop` removes some of those."""
        sent = {**self.headers(), **(headers or {})}
        for name in drop:
            sent = {k: v for k, v in sent.items() if k.lower() != name.lower()}
        body = data.encode() if isinstance(data, str) else data
        if json_body is not None:
            body = json.dumps(json_body).encode()
        return await self.send(method, path, headers=sent, body=body, params=params)

    async def call(self, operation_id: str, status: int, path: str | None = None, **kwargs: Any) -> Reply:
        """A request that must get `status`, checked against the contract (for setting up a case)."""
        method, template, _ = self.contract.operations[operation_id]
        reply = await self.request(method, path or template, **kwargs)
        assert reply.status == status, str(reply)
        self.contract.check(operation_id, reply)
        return reply

    def on_cleanup(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        self._cleanups.append(cleanup)

    async def cleanup(self) -> None:
        for cleanup in reversed(self._cleanups):
            await cleanup()

    # What a case needs to exist; the emulator makes it, AEP must already have it (or the case is skipped).

    @abstractmethod
    async def dataset_id(self) -> str:
        """Some dataset of the tenant."""

    @abstractmethod
    async def finished_job(self) -> dict[str, Any]:
        """Some SUCCEEDED export job of the tenant."""

    async def batch_id(self) -> str:
        return str((await self.finished_job())["destination"]["batchId"])

    async def file(self) -> tuple[str, str]:
        """(dataSetFileId, name) of one exported file."""
        batch_id = await self.batch_id()
        files = (await self.call("listBatchFiles", 200, f"{EXPORT}/batches/{batch_id}/files")).json()["data"]
        if not files:
            pytest.skip(f"batch {batch_id} lists no files")
        file_id = files[0]["dataSetFileId"]
        listing = await self.call("getFile", 200, f"{EXPORT}/files/{file_id}")
        return file_id, listing.json()["data"][0]["name"]


class EmulatorTarget(Target):
    name = "emulator"

    def __init__(self, contract: Contract, client: TestClient[Any, Any], factory: ClientFactory):
        super().__init__(contract)
        self.client = client
        self._factory = factory
        self._finished: dict[str, Any] | None = None

    async def with_options(self, **overrides: Any) -> EmulatorTarget:
        """The same suite against an emulator started with other options (auth, credentials, limits)."""
        options = Options(clock="manual", start_time_ms=START_MS, **overrides)
        return EmulatorTarget(self.contract, await self._factory(create_app(options)), self._factory)

    def headers(self, **extra: str) -> dict[str, str]:
        return aep_headers(ORG, "prod", **extra)

    async def send(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None, params: Any
    ) -> Reply:
        response = await self.client.request(method, path, headers=dict(headers), data=body, params=params)
        return Reply(method, path, response.status, response.headers, await response.read())

    async def control(self, method: str, path: str, json_body: Any = None) -> Any:
        response = await self.client.request(method, f"/_emulator{path}", json=json_body)
        assert response.status < 300, await response.text()
        return await response.json()

    async def create_dataset(self, **fields: Any) -> str:
        body = {"name": "contract", "schemaRef": {"id": PROFILE_UNION}, **fields}
        reply = await self.call("createDataset", 201, json_body=body)
        return str(reply.json()[0].rsplit("/", 1)[1])

    async def create_job(
        self, dataset_id: str | None = None, *, headers: Mapping[str, str] | None = None, **fields: Any
    ) -> dict[str, Any]:
        body = {
            "destination": {"datasetId": dataset_id or await self.create_dataset()},
            "schema": {"name": "_xdm.context.profile"},
            **fields,
        }
        reply = await self.call("createExportJob", 200, json_body=body, headers=headers)
        job: dict[str, Any] = reply.json()
        return job

    async def poll(self, job_id: int) -> dict[str, Any]:
        job: dict[str, Any] = (await self.call("getExportJob", 200, f"{JOBS}/{job_id}")).json()
        return job

    async def dataset_id(self) -> str:
        return await self.create_dataset()

    async def finished_job(self) -> dict[str, Any]:
        if self._finished is None:
            job = await self.create_job()
            while job["status"] not in ("SUCCEEDED", "FAILED", "CANCELLED"):
                job = await self.poll(job["id"])
            assert job["status"] == "SUCCEEDED", job
            self._finished = job
        return self._finished


# -- drift mode -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftConfig:
    base_url: str
    ims_url: str
    client_id: str
    client_secret: str
    org: str
    sandbox: str
    scopes: str
    allow_writes: bool

    @staticmethod
    def missing(environ: Mapping[str, str]) -> list[str]:
        return [name for name in DRIFT_REQUIRED if not environ.get(name)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DriftConfig | None:
        if cls.missing(environ):
            return None
        return cls(
            base_url=environ["AEP_DRIFT_BASE_URL"].rstrip("/"),
            ims_url=environ["AEP_DRIFT_IMS_URL"].rstrip("/"),
            client_id=environ["AEP_DRIFT_CLIENT_ID"],
            client_secret=environ["AEP_DRIFT_CLIENT_SECRET"],
            org=environ["AEP_DRIFT_ORG_ID"],
            sandbox=environ.get("AEP_DRIFT_SANDBOX") or "prod",
            scopes=environ.get("AEP_DRIFT_SCOPES") or DEFAULT_SCOPES,
            allow_writes=environ.get("AEP_DRIFT_ALLOW_WRITES", "") in ("1", "true", "yes"),
        )

    @staticmethod
    def skip_reason(environ: Mapping[str, str] = os.environ) -> str:
        return (
            "drift checks against a real AEP sandbox are not configured: set "
            + ", ".join(DriftConfig.missing(environ))
            + " (see the README, 'Drift checks against a real AEP sandbox')"
        )


_TOKENS: dict[tuple[str, str], str] = {}


class AepTarget(Target):
    name = "aep"
    drift = True

    def __init__(self, contract: Contract, config: DriftConfig, session: aiohttp.ClientSession):
        super().__init__(contract)
        self.config = config
        self.session = session
        self.allow_writes = config.allow_writes
        self._finished: dict[str, Any] | None = None

    async def token(self) -> str:
        """One IMS token per run (IMS throttles clients that mint too many)."""
        key = (self.config.ims_url, self.config.client_id)
        if key not in _TOKENS:
            form = {
                "grant_type": "client_credentials",
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret,
                "scope": self.config.scopes,
            }
            async with self.session.post(self.config.ims_url + TOKEN, data=form) as response:
                body = await response.json(content_type=None)
                assert response.status == 200, f"IMS refused the drift credentials: {response.status} {body}"
            _TOKENS[key] = body["access_token"]
        return _TOKENS[key]

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {_TOKENS.get((self.config.ims_url, self.config.client_id), '')}",
            "x-api-key": self.config.client_id,
            "x-gw-ims-org-id": self.config.org,
            "x-sandbox-name": self.config.sandbox,
            "Content-Type": "application/json",
        }
        headers.update(extra)
        return headers

    def credentials(self) -> dict[str, str]:
        return {"client_id": self.config.client_id, "client_secret": self.config.client_secret}

    async def send(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None, params: Any
    ) -> Reply:
        base = self.config.ims_url if path.startswith("/ims/") else self.config.base_url
        async with self.session.request(
            method, base + path, headers=dict(headers), data=body, params=params, allow_redirects=False
        ) as response:
            return Reply(method, path, response.status, response.headers, await response.read())

    def require_writes(self) -> None:
        if not self.allow_writes:
            pytest.skip("creates objects in the sandbox: set AEP_DRIFT_ALLOW_WRITES=1 to run it")

    def delete_later(self, path: str) -> None:
        async def delete() -> None:
            reply = await self.request("DELETE", path)
            if reply.status >= 300 and reply.status != 404:
                warnings.warn(f"drift cleanup: DELETE {path} -> {reply}", stacklevel=1)

        self.on_cleanup(delete)

    async def dataset_id(self) -> str:
        found = (await self.call("listDatasets", 200, params={"limit": "1", "properties": "name"})).json()
        if not found:
            pytest.skip("the sandbox has no dataset to read")
        return str(next(iter(found)))

    async def finished_job(self) -> dict[str, Any]:
        if self._finished is None:
            page = await self.call("listExportJobs", 200, params={"status": "SUCCEEDED", "limit": "1"})
            records = page.json()["records"]
            if not records:
                pytest.skip("the sandbox has no SUCCEEDED export job to read")
            self._finished = records[0]
        return self._finished
