"""Compressed and oddly encoded request bodies (issue 12, findings 8 and 9): `--max-body-bytes` bounds the
inflating, not only its result; a body that is not what its Content-Encoding says is a JSON 400 with an
x-request-id, journaled; IMS's form with an unknown charset is IMS's 400."""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import zlib
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.options import Options
from tests.conftest import START_MS, Aep, aep_headers
from tests.reliability.conftest import TIMEOUT, json_error, message_of

DATASETS = "/data/foundation/catalog/dataSets"
LIMIT = 64 * 1024


@pytest.fixture
def options() -> Options:
    return Options(clock="manual", start_time_ms=START_MS, max_body_bytes=LIMIT)


def bomb_with_a_bad_checksum(decoded_bytes: int) -> bytes:
    """A gzip body of `decoded_bytes` zeros whose CRC trailer is wrong: whoever inflates all of it fails
    at the very end; whoever stops at the limit never notices."""
    body = bytearray(gzip.compress(b"\0" * decoded_bytes, mtime=0))
    body[-8] ^= 0xFF
    return bytes(body)


async def pipelined(client: TestClient[Any, Any], first: bytes, second: bytes) -> list[int]:
    """Send two requests on one connection at once; the statuses of the answers, until the server closes."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(first + second)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


def post(path: str, body: bytes, **headers: str) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


HEALTH = b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("path", [DATASETS, "/_emulator/reset"])
async def test_a_gzip_bomb_is_never_inflated_past_the_limit(
    client: TestClient[Any, Any], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # 64 MB of zeros in 64 KB of gzip. aiohttp used to inflate all of it on the loop, also for a handler
    # that ignores the body (reset) and after the 413: it met the bad checksum, logged a traceback and
    # dropped the connection, so the health check behind it never got an answer.
    bomb = bomb_with_a_bad_checksum(1024 * LIMIT)
    headers = {**aep_headers(), "Content-Encoding": "gzip"}
    with caplog.at_level(logging.DEBUG):
        statuses = await pipelined(client, post(path, bomb, **headers), HEALTH)
    expected = 413 if path == DATASETS else 200
    assert statuses == [expected, 200]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_past_the_limit_the_413_names_it(aep: Aep) -> None:
    bomb = gzip.compress(b" " * (LIMIT + 1))
    headers = aep.headers(**{"Content-Encoding": "gzip"})
    response = await aep.client.post(DATASETS, data=bomb, headers=headers)
    message = message_of(await json_error(response, 413))
    assert str(LIMIT) in message and "--max-body-bytes" in message


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),  # raw deflate, as some send
        ("identity", lambda data: data),
    ],
)
async def test_encoded_bodies_within_the_limit_are_served(aep: Aep, encoding: str, encode: Any) -> None:
    body = b'{"name": "encoded", "description": "' + b"d" * (LIMIT // 2) + b'"}'
    response = await aep.client.post(
        DATASETS, data=encode(body), headers=aep.headers(**{"Content-Encoding": encoding})
    )
    assert response.status == 201, await response.text()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"name": "not gzip at all"}', "not valid gzip"),
        # mtime=0: the same bytes in every xdist worker (parameters are part of the test's id)
        (gzip.compress(b'{"name": "cut"}', mtime=0)[:-4], "cut short"),
        (bomb_with_a_bad_checksum(100), "not valid gzip"),
        (gzip.compress(b'{"name": "x"}', mtime=0) + b"trailing", "follows the end"),
    ],
)
async def test_a_body_that_is_not_what_its_encoding_says_is_a_journaled_json_400(
    aep: Aep, body: bytes, reason: str
) -> None:
    headers = aep.headers(**{"Content-Encoding": "gzip", "x-request-id": "bad-gzip"})
    response = await aep.client.post(DATASETS, data=body, headers=headers)
    assert reason in message_of(await json_error(response, 400))
    assert response.headers["x-request-id"] == "bad-gzip"
    journal = await (await aep.client.get("/_emulator/requests")).json()
    assert [(e["method"], e["status"], e["headers"]["x-request-id"]) for e in journal["requests"]] == [
        ("POST", 400, "bad-gzip")
    ]


async def test_an_unsupported_encoding_is_415_naming_the_supported_ones(aep: Aep) -> None:
    for encoding in ("br", "gzip, gzip", "compress"):
        headers = aep.headers(**{"Content-Encoding": encoding})
        response = await aep.client.post(DATASETS, data=b"{}", headers=headers)
        assert "gzip" in message_of(await json_error(response, 415))


@pytest.mark.parametrize("charset", ["bogus", "zlib", "utf-32"])
async def test_an_ims_form_in_an_unknown_or_wrong_charset_is_ims_400(
    client: TestClient[Any, Any], charset: str
) -> None:
    response = await client.post(
        "/ims/token/v3",
        data=b"grant_type=client_credentials&client_id=a&client_secret=b",
        headers={"Content-Type": f"application/x-www-form-urlencoded; charset={charset}"},
    )
    body = await json_error(response, 400)
    assert body["error"] == "invalid_request"


async def test_an_ims_form_in_a_declared_charset_is_read_in_it(client: TestClient[Any, Any]) -> None:
    form = "grant_type=client_credentials&client_id=caf\u00e9&client_secret=b&scope=openid"
    response = await client.post(
        "/ims/token/v3",
        data=form.encode("latin-1"),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=latin-1"},
    )
    assert response.status == 200, await response.text()


async def test_a_gzipped_ims_form_is_read(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/ims/token/v3",
        data=gzip.compress(b"grant_type=client_credentials&client_id=a&client_secret=b&scope=openid"),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"},
    )
    assert response.status == 200, await response.text()
