"""Connections (issue 12, finding 7): idle, half-sent and unread connections are closed after configurable
timeouts, and running out of file descriptors neither stops the server for good nor floods its log.

Each test waits for the server to act with a bounded blocking read or poll on its socket: nothing sleeps,
and the timeouts are small (fractions of a second) so that the tests are fast; the bound is generous.
"""

from __future__ import annotations

import json
import resource
import select
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from emulator.options import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_KEEPALIVE_TIMEOUT_SECONDS,
    DEFAULT_SEND_TIMEOUT_SECONDS,
    Options,
)
from emulator.runner import EmulatorServer
from tests.conftest import aep_headers
from tests.reliability.conftest import TIMEOUT, clean_env, launch, message_of, request

SHORT = 0.3  # seconds: every timeout of the server under test
DATASETS = "/data/foundation/catalog/dataSets"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    options = Options(port=0, clock="manual", keepalive_timeout=SHORT, body_timeout=SHORT, send_timeout=SHORT)
    with EmulatorServer(options) as running:
        yield running


def connect(server: EmulatorServer, receive_buffer: int | None = None) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connect, so that the window the server sees stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(TIMEOUT)
    sock.connect((host, int(port)))
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by TIMEOUT per read)."""
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_the_documented_defaults() -> None:
    options = Options()
    assert options.keepalive_timeout == DEFAULT_KEEPALIVE_TIMEOUT_SECONDS == 15.0
    assert options.body_timeout == DEFAULT_BODY_TIMEOUT_SECONDS == 30.0
    assert options.send_timeout == DEFAULT_SEND_TIMEOUT_SECONDS == 30.0


def test_a_connection_that_sends_nothing_is_closed(server: EmulatorServer) -> None:
    assert read_until_closed(connect(server)) == b""


@pytest.mark.parametrize("head", [b"GET /_emulator/hea", b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n"])
def test_a_request_head_that_never_ends_is_closed(server: EmulatorServer, head: bytes) -> None:
    sock = connect(server)
    sock.sendall(head)
    assert read_until_closed(sock) == b""


def test_an_idle_keep_alive_connection_is_closed_after_its_answer(server: EmulatorServer) -> None:
    sock = connect(server)
    sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'"}')


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 100\r\n\r\n" + b'{"name": ',
        b"Transfer-Encoding: chunked\r\n\r\n" + b'9\r\n{"name": \r\n',
    ],
)
def test_a_body_that_never_ends_is_a_408_and_the_connection_closes(
    server: EmulatorServer, framing: bytes
) -> None:
    head = "".join(f"{k}: {v}\r\n" for k, v in aep_headers(**{"x-request-id": "slow-body"}).items())
    sock = connect(server)
    sock.sendall(f"POST {DATASETS} HTTP/1.1\r\nHost: x\r\n{head}".encode() + framing)
    answer = read_until_closed(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408 "), answer[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert "--body-timeout" in message_of(body)
    status, journal = request(server.url, "GET", "/_emulator/requests?path=" + DATASETS)
    assert status == 200
    assert (408, "slow-body") in [
        (e["status"], e["headers"].get("x-request-id")) for e in journal["requests"]
    ]


def test_a_client_that_reads_nothing_of_a_large_answer_is_cut_off(server: EmulatorServer) -> None:
    # About 8 MB of datasets in one listing: more than the socket buffers of both ends hold, so the rest
    # waits in the server's memory for a reader that never comes.
    headers = aep_headers(org="BIGLIST@AdobeOrg")
    for _ in range(9):
        status, _ = request(
            server.url, "POST", DATASETS, {"name": "big", "description": "d" * 900_000}, **headers
        )
        assert status == 201
    sock = connect(server, receive_buffer=4096)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"GET {DATASETS}?limit=100 HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
    # Without reading: wait for the server to cut the connection (a reset or a close, seen by poll).
    poller = select.poll()
    poller.register(sock, select.POLLHUP | select.POLLERR | select.POLLRDHUP)
    events = poller.poll(TIMEOUT * 1000)
    sock.close()
    assert events, "the server kept the connection and its unsent answer"


def test_out_of_descriptors_the_server_recovers_and_logs_one_line() -> None:
    """1,100 idle sockets under a 1,024 limit stopped the health check (idle ones were kept for an hour)
    and logged a traceback per second. Here: 200 under 64."""

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", "--port", "0", "--keepalive-timeout", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
        preexec_fn=low_limit,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        url = line.rsplit(" ", 1)[1].strip()
        host, port = url.removeprefix("http://").rsplit(":", 1)
        idle = [socket.create_connection((host, int(port)), timeout=TIMEOUT) for _ in range(200)]
        try:
            status, body = request(url, "GET", "/_emulator/health")
            assert (status, body["status"]) == (200, "ok")
        finally:
            for sock in idle:
                sock.close()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=TIMEOUT)
    lines = stderr.decode(errors="replace").splitlines()
    about_accept = [line for line in lines if "accept" in line]
    assert 1 <= len(about_accept) <= 2, lines[-20:]
    assert not [line for line in lines if "Traceback" in line], lines[-20:]


def test_bad_timeouts_exit_2_naming_the_flag() -> None:
    for flag, value in [("--keepalive-timeout", "0"), ("--body-timeout", "inf"), ("--send-timeout", "nan")]:
        served = launch(flag, value)
        assert not served.url
        _, stderr = served.process.communicate(timeout=TIMEOUT)
        assert served.process.returncode == 2
        assert flag in stderr.decode()
