"""`--auth strict`: only unexpired tokens minted by the emulated IMS, for the client named by x-api-key and,
with a credentials file, for the orgs that client may call."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp.test_utils import TestClient

from emulator import tokens
from emulator.options import Options
from tests.conftest import ORG, START_MS, assert_matches

DATASETS = "/data/foundation/catalog/dataSets"
CLIENT, SECRET = "strict-client", "strict-secret"
ANY_ORG_CLIENT, ANY_ORG_SECRET = "roaming-client", "roaming-secret"
OTHER_ORG = "ELSEWHERE@AdobeOrg"
CREDENTIALS = f"""
clients:
  {CLIENT}:
    secret: {SECRET}
    orgs: ["{ORG}"]
  {ANY_ORG_CLIENT}:
    secret: {ANY_ORG_SECRET}
"""
INVALID_TOKEN = {"error_code": "401013", "message": "Oauth token is not valid"}
INVALID_API_KEY = {"error_code": "403003", "message": "Api Key is invalid"}
ORG_NOT_ENTITLED = {"error_code": "403025", "message": "Profile is not valid"}


@pytest.fixture
def credentials_file(tmp_path: Path) -> Path:
    path = tmp_path / "credentials.yaml"
    path.write_text(CREDENTIALS)
    return path


@pytest.fixture
def options(credentials_file: Path) -> Options:
    return Options(clock="manual", start_time_ms=START_MS, auth="strict", credentials_file=credentials_file)


async def mint(client: TestClient[Any, Any], client_id: str = CLIENT, secret: str = SECRET) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": "openid",
    }
    response = await client.post("/ims/token/v3", data=form)
    body = await response.json()
    assert response.status == 200, body
    assert_matches("ims.token.response", body)
    return str(body["access_token"])


def headers(token: str, api_key: str = CLIENT, org: str = ORG) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "x-api-key": api_key,
        "x-gw-ims-org-id": org,
        "x-sandbox-name": "prod",
        "Content-Type": "application/json",
    }


async def list_datasets(
    client: TestClient[Any, Any], request_headers: dict[str, str], status: int = 200
) -> Any:
    response = await client.get(DATASETS, headers=request_headers)
    body = await response.json()
    assert response.status == status, body
    assert_matches("dataset.map.response" if status == 200 else "error.gateway", body)
    return body


async def advance(client: TestClient[Any, Any], seconds: float) -> None:
    response = await client.post("/_emulator/clock/advance", json={"seconds": seconds})
    assert response.status == 200
    assert_matches("control.clock.response", await response.json())


async def reset(client: TestClient[Any, Any], **query: str) -> None:
    response = await client.post("/_emulator/reset", params=query)
    assert response.status == 200
    assert_matches("control.reset.response", await response.json())


async def test_a_minted_token_is_accepted(client: TestClient[Any, Any]) -> None:
    token = await mint(client)
    response = await client.post(DATASETS, json={"name": "strict"}, headers=headers(token))
    assert response.status == 201
    assert_matches("dataset.create.response", await response.json())
    assert len(await list_datasets(client, headers(token))) == 1


@pytest.mark.parametrize("token", ["test-token", "emulator-made-up", "a" * 300])
async def test_a_token_not_minted_here_is_401_401013(client: TestClient[Any, Any], token: str) -> None:
    assert await list_datasets(client, headers(token), 401) == INVALID_TOKEN


async def test_many_tokens_are_valid_at_once(client: TestClient[Any, Any]) -> None:
    # aepp mints one token per API class it instantiates and keeps using all of them.
    tokens = [await mint(client) for _ in range(6)]
    for token in tokens:
        await list_datasets(client, headers(token))


async def test_a_client_minting_in_a_loop_evicts_only_its_own_oldest_tokens(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 12, finding 6: one client minting 100,001 tokens evicted every other client's live tokens.
    # The caps made small here: 5 per client, 8 in all.
    monkeypatch.setattr(tokens, "MAX_TOKENS_PER_CLIENT", 5, raising=False)
    monkeypatch.setattr(tokens, "MAX_TOKENS", 8)
    other = await mint(client, ANY_ORG_CLIENT, ANY_ORG_SECRET)
    minted = [await mint(client) for _ in range(20)]
    await list_datasets(client, headers(other, ANY_ORG_CLIENT))
    for token in minted[:15]:
        assert await list_datasets(client, headers(token), 401) == INVALID_TOKEN
    for token in minted[15:]:
        await list_datasets(client, headers(token))


async def test_past_the_global_cap_the_oldest_token_of_all_goes(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "MAX_TOKENS", 3)
    first, second = await mint(client, ANY_ORG_CLIENT, ANY_ORG_SECRET), await mint(client)
    third, fourth = await mint(client), await mint(client, ANY_ORG_CLIENT, ANY_ORG_SECRET)
    assert await list_datasets(client, headers(first, ANY_ORG_CLIENT), 401) == INVALID_TOKEN
    for token, api_key in ((second, CLIENT), (third, CLIENT), (fourth, ANY_ORG_CLIENT)):
        await list_datasets(client, headers(token, api_key))


async def test_a_token_expires_after_86399_seconds_of_emulator_time(client: TestClient[Any, Any]) -> None:
    token = await mint(client)
    await advance(client, 86398.999)
    await list_datasets(client, headers(token))
    await advance(client, 0.001)
    assert await list_datasets(client, headers(token), 401) == INVALID_TOKEN
    await list_datasets(client, headers(await mint(client)))


async def test_the_api_key_must_be_the_tokens_client_id(client: TestClient[Any, Any]) -> None:
    token = await mint(client)
    assert await list_datasets(client, headers(token, api_key=ANY_ORG_CLIENT), 403) == INVALID_API_KEY


async def test_an_org_the_client_may_not_call_is_403_403025(client: TestClient[Any, Any]) -> None:
    token = await mint(client)
    assert await list_datasets(client, headers(token, org=OTHER_ORG), 403) == ORG_NOT_ENTITLED


async def test_a_client_listed_without_orgs_may_call_any_org(client: TestClient[Any, Any]) -> None:
    token = await mint(client, ANY_ORG_CLIENT, ANY_ORG_SECRET)
    for org in (ORG, OTHER_ORG):
        await list_datasets(client, headers(token, api_key=ANY_ORG_CLIENT, org=org))


async def test_rules_keep_their_order(client: TestClient[Any, Any]) -> None:
    token = await mint(client)
    no_key = {k: v for k, v in headers("not-minted", org=OTHER_ORG).items() if k != "x-api-key"}
    assert await list_datasets(client, no_key, 401) == INVALID_TOKEN
    wrong_key_and_org = headers(token, api_key="someone-else", org=OTHER_ORG)
    assert await list_datasets(client, wrong_key_and_org, 403) == INVALID_API_KEY


async def test_a_full_reset_forgets_minted_tokens(client: TestClient[Any, Any]) -> None:
    token = await mint(client)
    await reset(client)
    assert await list_datasets(client, headers(token), 401) == INVALID_TOKEN


async def test_a_tenant_reset_keeps_tokens(client: TestClient[Any, Any]) -> None:
    token = await mint(client)
    await reset(client, org=ORG, sandbox="prod")
    assert await list_datasets(client, headers(token)) == {}


async def test_ims_and_the_control_plane_need_no_token(client: TestClient[Any, Any]) -> None:
    response = await client.get("/_emulator/health")
    assert response.status == 200
    assert_matches("control.health.response", await response.json())
    await mint(client)


class TestWithoutCredentialsFile:
    @pytest.fixture
    def options(self) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, auth="strict")

    async def test_any_client_gets_a_token_for_any_org(self, client: TestClient[Any, Any]) -> None:
        token = await mint(client, "anyone", "anything")
        await list_datasets(client, headers(token, api_key="anyone", org=OTHER_ORG))

    async def test_the_client_id_must_still_match(self, client: TestClient[Any, Any]) -> None:
        token = await mint(client, "anyone", "anything")
        assert await list_datasets(client, headers(token), 403) == INVALID_API_KEY


class TestOpenModeWithCredentialsFile:
    @pytest.fixture
    def options(self, credentials_file: Path) -> Options:
        return Options(clock="manual", start_time_ms=START_MS, credentials_file=credentials_file)

    async def test_the_gateway_accepts_any_bearer_token(self, client: TestClient[Any, Any]) -> None:
        await list_datasets(client, headers("anything", api_key="someone", org=OTHER_ORG))

    async def test_ims_still_checks_secrets(self, client: TestClient[Any, Any]) -> None:
        form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": "x", "scope": "o"}
        response = await client.post("/ims/token/v3", data=form)
        assert response.status == 401
        assert_matches("error.oauth", await response.json())


# -- the standalone server -------------------------------------------------------------------------


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("aep-emulator")
    return [str(script)] if script.exists() else [sys.executable, "-m", "emulator"]


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`aep-emulator serve --port 0 ARGS` in a subprocess; yields its base URL once it is listening."""
    process = subprocess.Popen(
        [*_cli(), "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""
        assert line.startswith("aep-emulator listening on "), f"{line!r} {process.stderr.read()}"
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        assert process.wait(30) == 0


def _token(url: str, client_id: str, secret: str) -> requests.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": "o"}
    return requests.post(f"{url}/ims/token/v3", data=form, timeout=30)


@pytest.mark.parametrize("via", ["flags", "environment"])
def test_serve_with_strict_auth_and_a_credentials_file(credentials_file: Path, via: str) -> None:
    if via == "flags":
        server = serving("--auth", "strict", "--credentials", str(credentials_file))
    else:
        env = {"AEP_EMULATOR_AUTH": "strict", "AEP_EMULATOR_CREDENTIALS": str(credentials_file)}
        server = serving(env=env)
    with server as url:
        refused = _token(url, CLIENT, "wrong")
        assert refused.status_code == 401
        assert_matches("error.oauth", refused.json())
        minted = _token(url, CLIENT, SECRET)
        assert minted.status_code == 200
        assert_matches("ims.token.response", minted.json())
        token = minted.json()["access_token"]
        ok = requests.get(url + DATASETS, headers=headers(token), timeout=30)
        assert ok.status_code == 200
        assert_matches("dataset.map.response", ok.json())
        for bad, expected in [
            (headers("made-up"), INVALID_TOKEN),
            (headers(token, org=OTHER_ORG), ORG_NOT_ENTITLED),
        ]:
            answer = requests.get(url + DATASETS, headers=bad, timeout=30)
            assert answer.json() == expected
            assert_matches("error.gateway", answer.json())


def test_serve_refuses_a_bad_credentials_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yaml"
    path.write_text("clients:\n  c: {secret: 42}\n")
    result = subprocess.run(
        [*_cli(), "serve", "--port", "0", "--credentials", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    assert "clients.c.secret" in lines[0]
