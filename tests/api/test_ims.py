"""The emulated IMS: POST /ims/token/v3 (OAuth Server-to-Server), its errors, the credentials file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.backend import Backend
from emulator.options import Options
from emulator.tokens import CredentialsError
from tests.conftest import START_MS, assert_matches

TOKEN = "/ims/token/v3"
FORM_TYPE = "application/x-www-form-urlencoded"
FORM = {
    "grant_type": "client_credentials",
    "client_id": "my-client",
    "client_secret": "my-secret",
    "scope": "openid,AdobeID,read_organizations",
}
CREDENTIALS_YAML = """
clients:
  my-client:
    secret: my-secret
    orgs: [ACME@AdobeOrg]
  any-org-client:
    secret: other-secret
"""


async def post_token(client: TestClient[Any, Any], status: int, **kwargs: Any) -> tuple[Any, Any]:
    response = await client.post(TOKEN, **kwargs)
    assert response.content_type == "application/json", await response.text()
    body = await response.json()
    assert response.status == status, body
    assert_matches("ims.token.response" if status == 200 else "error.oauth", body)
    return response, body


async def test_form_body_mints_a_bearer_token_for_a_day(client: TestClient[Any, Any]) -> None:
    response, body = await post_token(client, 200, data=FORM)
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    assert response.headers["Cache-Control"] == "no-store"


async def test_every_token_is_new(client: TestClient[Any, Any]) -> None:
    tokens = {(await post_token(client, 200, data=FORM))[1]["access_token"] for _ in range(5)}
    assert len(tokens) == 5


async def test_parameters_may_come_in_the_query_string(client: TestClient[Any, Any]) -> None:
    await post_token(client, 200, params=FORM)


async def test_the_form_body_wins_over_the_query_string(client: TestClient[Any, Any]) -> None:
    await post_token(client, 200, params={**FORM, "grant_type": "password"}, data=FORM)
    _, body = await post_token(client, 400, params=FORM, data={**FORM, "grant_type": "password"})
    assert body["error"] == "unsupported_grant_type"


async def test_missing_grant_type_is_invalid_request(client: TestClient[Any, Any]) -> None:
    form = {k: v for k, v in FORM.items() if k != "grant_type"}
    response, body = await post_token(client, 400, data=form, headers={"x-request-id": "req-1"})
    assert body == {"error": "invalid_request", "error_description": "Missing required parameter: grant_type"}
    assert response.headers["x-request-id"] == "req-1"


@pytest.mark.parametrize("grant_type", ["authorization_code", "password", "refresh_token", ""])
async def test_other_grant_types_are_unsupported(client: TestClient[Any, Any], grant_type: str) -> None:
    _, body = await post_token(client, 400, data={**FORM, "grant_type": grant_type})
    assert body["error"] == "unsupported_grant_type"
    assert f"'{grant_type}'" in body["error_description"]


@pytest.mark.parametrize("name", ["client_id", "client_secret", "scope"])
async def test_a_missing_parameter_is_named(client: TestClient[Any, Any], name: str) -> None:
    form = {k: v for k, v in FORM.items() if k != name}
    _, body = await post_token(client, 400, data=form)
    assert body == {"error": "invalid_request", "error_description": f"Missing required parameter: {name}"}


async def test_an_empty_parameter_is_invalid_request(client: TestClient[Any, Any]) -> None:
    _, body = await post_token(client, 400, data={**FORM, "client_id": ""})
    assert body["error"] == "invalid_request"
    assert "client_id" in body["error_description"]


async def test_a_json_body_is_refused_with_a_hint(client: TestClient[Any, Any]) -> None:
    _, body = await post_token(client, 400, json=FORM)
    assert body["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in body["error_description"]


async def test_a_multipart_form_works_and_file_parts_are_ignored(client: TestClient[Any, Any]) -> None:
    form = FormData(FORM)
    form.add_field("client_secret", b"not a text field", filename="secret.txt")
    await post_token(client, 200, data=form)


async def test_other_methods_are_405_in_the_oauth_shape(client: TestClient[Any, Any]) -> None:
    response = await client.get(TOKEN, params=FORM)
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    body = await response.json()
    assert_matches("error.oauth", body)
    assert body["error"] == "invalid_request" and "GET" in body["error_description"]


@pytest.mark.parametrize("path", ["/ims/token/v1", "/ims/exchange/jwt", "/ims/", "/ims/token/v3/extra"])
async def test_unknown_ims_paths_are_404_in_the_oauth_shape(client: TestClient[Any, Any], path: str) -> None:
    response = await client.post(path, data=FORM, headers={"x-request-id": "ims-404"})
    assert response.status == 404
    assert response.headers["x-request-id"] == "ims-404"
    body = await response.json()
    assert_matches("error.oauth", body)
    assert body["error"] == "invalid_request" and path in body["error_description"]


async def test_an_oversized_form_is_413_in_the_oauth_shape(client: TestClient[Any, Any]) -> None:
    response = await client.post(TOKEN, data="x=" + "a" * (2 << 20), headers={"Content-Type": FORM_TYPE})
    assert response.status == 413
    body = await response.json()
    assert_matches("error.oauth", body)
    assert body["error"] == "invalid_request"


async def test_token_v2_works_as_v3(client: TestClient[Any, Any]) -> None:
    # Adobe's IMS Postman collection mints its token with POST /ims/token/v2 (client credentials).
    response = await client.post("/ims/token/v2", data=FORM)
    body = await response.json()
    assert response.status == 200, body
    assert_matches("ims.token.response", body)
    assert body["token_type"] == "bearer" and body["expires_in"] == 86399
    assert response.headers["Cache-Control"] == "no-store"
    error = await client.post("/ims/token/v2", data={**FORM, "grant_type": "password"})
    assert error.status == 400
    assert (await error.json())["error"] == "unsupported_grant_type"


async def test_a_v2_token_passes_strict_auth(aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(Options(clock="manual", auth="strict")))
    minted = await (await client.post("/ims/token/v2", data=FORM)).json()
    headers = {
        "Authorization": f"Bearer {minted['access_token']}",
        "x-api-key": FORM["client_id"],
        "x-gw-ims-org-id": "ORG@AdobeOrg",
    }
    response = await client.get("/data/foundation/catalog/dataSets", headers=headers)
    assert response.status == 200, await response.text()


async def test_ims_needs_no_gateway_headers_and_is_journaled(client: TestClient[Any, Any]) -> None:
    await post_token(client, 200, data=FORM)
    journal = await (await client.get("/_emulator/requests", params={"path": TOKEN})).json()
    assert_matches("control.requests.response", journal)
    assert [(e["method"], e["status"]) for e in journal["requests"]] == [("POST", 200)]


async def test_without_a_credentials_file_any_client_gets_a_token(client: TestClient[Any, Any]) -> None:
    await post_token(client, 200, data={**FORM, "client_id": "whoever", "client_secret": "whatever"})


class TestCredentialsFile:
    """IMS with `--credentials`: only the listed clients, with their secrets."""

    @pytest.fixture(params=["yaml", "json"])
    def credentials_file(self, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
        path = tmp_path / f"credentials.{request.param}"
        if request.param == "yaml":
            path.write_text(CREDENTIALS_YAML)
        else:
            path.write_text(
                json.dumps({"clients": {"my-client": {"secret": "my-secret", "orgs": ["ACME@AdobeOrg"]}}})
            )
        return path

    @pytest.fixture
    def options(self, credentials_file: Path) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, credentials_file=credentials_file)

    async def test_a_listed_client_with_its_secret_gets_a_token(self, client: TestClient[Any, Any]) -> None:
        await post_token(client, 200, data=FORM)

    async def test_a_wrong_secret_is_401_invalid_client(self, client: TestClient[Any, Any]) -> None:
        _, body = await post_token(client, 401, data={**FORM, "client_secret": "guess"})
        assert body == {"error": "invalid_client", "error_description": "invalid client_secret parameter"}

    async def test_an_unknown_client_is_401_invalid_client(self, client: TestClient[Any, Any]) -> None:
        _, body = await post_token(client, 401, data={**FORM, "client_id": "stranger"})
        assert body == {"error": "invalid_client", "error_description": "invalid client_id parameter"}

    async def test_request_errors_come_before_client_checks(self, client: TestClient[Any, Any]) -> None:
        _, body = await post_token(
            client, 400, data={**FORM, "client_secret": "guess", "grant_type": "password"}
        )
        assert body["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("content", "where", "reason"),
    [
        ("clients: {}\n", "clients", "should be non-empty"),
        ("clients:\n  c: {secret: ''}\n", "clients.c.secret", "should be non-empty"),
        ("clients:\n  c: {secret: s, orgs: ORG}\n", "clients.c.orgs", "is not of type 'array'"),
        ("clients:\n  c: {secret: s, org: [A]}\n", "clients.c", "Additional properties"),
        ("clients: [\n", "line 2, column 1", "not valid YAML"),
        ("- just a list\n", "<document>", "is not of type 'object'"),
    ],
)
def test_a_bad_credentials_file_names_the_file_the_path_and_the_reason(
    tmp_path: Path, content: str, where: str, reason: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(CredentialsError) as failure:
        Backend(Options(credentials_file=path))
    message = str(failure.value)
    assert message.startswith(f"{path}: {where}: "), message
    assert reason in message


def test_a_missing_credentials_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read"):
        Backend(Options(credentials_file=tmp_path / "absent.yaml"))
