"""Helpers for the reliability tests: error-shape checks, raw HTTP, and `aep-emulator serve` in a subprocess.

Nothing here sleeps: a subprocess is waited for with select() on its output, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from tests.conftest import Aep, assert_matches

TIMEOUT = 60.0
READY = re.compile(r"aep-emulator listening on (http://\S+)")


def error_schema(path: str, body: Any) -> str:
    """The envelope an error on `path` must come in (see emulator/errors.py)."""
    if isinstance(body, dict) and "error_code" in body:
        return "error.gateway"
    if path.startswith("/ims/") and isinstance(body, dict) and "error" in body:
        return "error.oauth"
    return "error.ups" if path.startswith("/data/core/ups") else "error.problem"


def check_error(path: str, status: int, content_type: str, text: str, request_id: str | None) -> Any:
    """A 4xx in the documented shape for its path, with an x-request-id; returns the parsed body."""
    assert 400 <= status < 500, (status, text[:500])
    assert content_type == "application/json", (status, content_type, text[:500])
    body = json.loads(text)
    assert_matches(error_schema(path, body), body)
    if isinstance(body, dict) and "status" in body:
        assert body["status"] == status
    assert request_id, "every error carries an x-request-id"
    return body


async def json_error(response: aiohttp.ClientResponse, status: int | None = None) -> Any:
    text = await response.text()
    body = check_error(
        response.url.path, response.status, response.content_type, text, response.headers.get("x-request-id")
    )
    if status is not None:
        assert response.status == status, text[:500]
    return body


def message_of(body: Any) -> str:
    """The human text of any error envelope."""
    if "errors" in body:
        return str(body["errors"][str(body["status"])][0]["message"])
    return str(body.get("detail") or body.get("message") or body.get("error_description"))


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


async def raw_http(host: str, port: int, request: bytes) -> RawResponse:
    """Send bytes as they are (no client-side validation) and read the answer until the server closes."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    return RawResponse(status, headers, body)


def clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AEP_EMULATOR_")}
    env.update(variables)
    return env


@dataclass
class Served:
    """`python -m emulator serve --port 0 ...` running in a subprocess."""

    process: subprocess.Popen[bytes]
    url: str = ""
    stderr_lines: list[str] = field(default_factory=list)
    _pending: bytes = b""

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def wait_for_stderr(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Blocks (select, no sleep) until a stderr line matches `pattern`."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        assert self.process.stderr is not None
        descriptor = self.process.stderr.fileno()
        while True:
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                text = line.decode(errors="replace")
                self.stderr_lines.append(text)
                match = compiled.search(text)
                if match:
                    return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no stderr line matched {pattern!r}: {self.stderr_lines[-20:]}")
            readable, _, _ = select.select([descriptor], [], [], remaining)
            if readable:
                chunk = os.read(descriptor, 65536)
                if not chunk:
                    raise AssertionError(f"stderr closed before {pattern!r}: {self.stderr_lines[-20:]}")
                self._pending += chunk

    def stop(self, signum: int = signal.SIGTERM, timeout: float = TIMEOUT) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def rest_of_stderr(self) -> str:
        assert self.process.stderr is not None
        rest = self.process.stderr.read() or b""
        return "\n".join(self.stderr_lines) + "\n" + (self._pending + rest).decode(errors="replace")


def launch(*args: str, env: dict[str, str] | None = None) -> Served:
    """Start the server; returns once it printed its ready line, or once it exited without one."""
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or clean_env(),
    )
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], TIMEOUT)
    line = process.stdout.readline().decode() if readable else ""
    served = Served(process)
    match = READY.search(line)
    if match:
        served.url = match.group(1)
    return served


Start = Callable[..., Served]


@pytest.fixture
def serve() -> Iterator[Start]:
    """Starts servers with `launch` and kills whichever of them is still running at the end."""
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None, ready: bool = True) -> Served:
        served = launch(*args, env=env)
        started.append(served)
        if ready and not served.url:
            served.process.kill()
            _, stderr = served.process.communicate(timeout=TIMEOUT)
            pytest.fail(f"the server did not start: {stderr.decode(errors='replace')}")
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
        served.process.communicate(timeout=TIMEOUT)


EXPORT = "/data/foundation/export"


async def finished_file(aep: Aep) -> tuple[str, str]:
    """(dataSetFileId, file name) of a file of a succeeded export."""
    dataset_id = await aep.create_dataset()
    job = await aep.create_job(dataset_id)
    await aep.get_job(job["id"])
    await aep.get_job(job["id"])
    files = await aep.call(
        "GET",
        f"{EXPORT}/batches/{job['destination']['batchId']}/files",
        status=200,
        schema="data-access.batch-files.response",
    )
    file_id = files["data"][0]["dataSetFileId"]
    listing = await aep.call(
        "GET",
        f"{EXPORT}/files/{file_id}",
        status=200,
        schema="data-access.file-listing.response",
    )
    return file_id, listing["data"][0]["name"]


def request(url: str, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    """A blocking JSON request to a server started by `serve`: (status, parsed body)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    call = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
