"""`Expect: 100-continue` (curl sends it with bodies over 1 KB) on the server `aep-emulator serve` runs: the
interim 100 once the gateway has let the request in, then the answer; a request the gateway refuses gets
its error without the 100; an expectation other than 100-continue is a JSON 417."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from emulator.errors import MISSING_TOKEN
from emulator.options import Options
from emulator.runner import EmulatorServer
from tests.conftest import aep_headers
from tests.reliability.conftest import TIMEOUT

DATASETS = "/data/foundation/catalog/dataSets"
BODY = json.dumps(
    {
        "name": "expecting",
        "schemaRef": {
            "id": "https://ns.adobe.com/xdm/context/profile__union",
            "contentType": "application/vnd.adobe.xed+json;version=1",
        },
    }
).encode()


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Options(port=0, clock="manual")) as running:
        yield running


def _head(server: EmulatorServer, headers: dict[str, str]) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    lines = [
        f"POST {DATASETS} HTTP/1.1",
        f"Host: {host}",
        f"Content-Length: {len(BODY)}",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """The status line of the next answer and its body (read to the length it announces)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    status, *fields = head.split(b"\r\n")
    length = next((int(f.split(b":")[1]) for f in fields if f.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += sock.recv(65536)
    return status, body


def test_the_interim_answer_comes_before_the_body_is_sent(server: EmulatorServer) -> None:
    with _head(server, {**aep_headers(), "Expect": "100-continue"}) as sock:
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        status, body = _answer(sock)
    assert status == b"HTTP/1.1 201 Created"
    assert json.loads(body)[0].startswith("@/dataSets/")


def test_a_refused_request_gets_its_error_without_the_interim_answer(server: EmulatorServer) -> None:
    headers = {name: value for name, value in aep_headers().items() if name != "Authorization"}
    with _head(server, {**headers, "Expect": "100-continue"}) as sock:
        status, body = _answer(sock)
    assert status == b"HTTP/1.1 401 Unauthorized"
    assert json.loads(body)["error_code"] == MISSING_TOKEN.error_code


def test_another_expectation_is_a_json_417(server: EmulatorServer) -> None:
    with _head(server, {**aep_headers(), "Expect": "something-else"}) as sock:
        status, body = _answer(sock)
    assert status == b"HTTP/1.1 417 Expectation Failed"
    assert json.loads(body)["title"] == "ExpectationFailedError"
