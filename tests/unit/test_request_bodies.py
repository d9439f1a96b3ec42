"""Reading a request body: at once when it came with the head, chunk by chunk (under the timeout) when it
is still arriving; the same bytes, limits and errors either way."""

from __future__ import annotations

import asyncio
import gzip
from types import SimpleNamespace
from unittest import mock

import pytest
from aiohttp import streams
from aiohttp.test_utils import make_mocked_request

from emulator.api.bodies import read_body
from emulator.api.common import Call, body_of
from emulator.errors import BadRequest, PayloadTooLarge, RequestTimeout

LIMIT = 1024


def _request(
    *, encoding: str | None = None, length: int | None = None
) -> tuple[object, streams.StreamReader]:
    loop = asyncio.get_running_loop()
    protocol = mock.Mock(_reading_paused=False)
    payload = streams.StreamReader(protocol, 2**16, loop=loop)
    headers = {"Content-Type": "application/json"}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    if length is not None:
        headers["Content-Length"] = str(length)
    request = make_mocked_request("POST", "/x", headers=headers, payload=payload)
    return request, payload


def _call(request: object) -> Call:
    """A call whose backend has only what reading a body needs: the limit and the timeout."""
    backend = SimpleNamespace(options=SimpleNamespace(max_body_bytes=LIMIT, body_timeout=5.0))
    return Call(request, backend, (), None, {})  # type: ignore[arg-type]


async def test_a_body_that_came_with_the_head_is_read_at_once() -> None:
    request, payload = _request(length=7)
    payload.feed_data(b'{"a": 1')
    payload.feed_eof()
    call = _call(request)
    with mock.patch("asyncio.timeout", side_effect=AssertionError("no timer for a body already here")):
        assert await body_of(call) == b'{"a": 1'
    assert await body_of(call) == b'{"a": 1'  # read once, then the same bytes for every caller


async def test_a_body_still_arriving_is_read_as_it_comes() -> None:
    request, payload = _request()
    reading = asyncio.create_task(read_body(request, LIMIT, 5.0))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # the reader waits for the first chunk
    payload.feed_data(b'{"a": ')
    await asyncio.sleep(0)
    payload.feed_data(b"1}")
    payload.feed_eof()
    assert await reading == b'{"a": 1}'


@pytest.mark.parametrize("arrived", [True, False])
async def test_limits_and_encodings_hold_on_both_paths(arrived: bool) -> None:
    cases = [
        (None, b"x" * (LIMIT + 1), PayloadTooLarge),
        ("gzip", gzip.compress(b"y" * (LIMIT + 1)), PayloadTooLarge),
        ("gzip", gzip.compress(b"{}")[:-4], BadRequest),  # cut short
        ("gzip", gzip.compress(b"{}") + b"!", BadRequest),  # data after the stream
    ]
    for encoding, data, error in cases:
        request, payload = _request(encoding=encoding)
        call = _call(request)
        if arrived:
            payload.feed_data(data)
            payload.feed_eof()
            reading = asyncio.create_task(body_of(call))
        else:
            reading = asyncio.create_task(body_of(call))
            await asyncio.sleep(0)
            payload.feed_data(data)
            payload.feed_eof()
        with pytest.raises(error):
            await reading
        with pytest.raises(error):  # the same error for every later reader
            await body_of(call)
    request, payload = _request(encoding="gzip")
    payload.feed_data(gzip.compress(b'{"z": 2}'))
    payload.feed_eof()
    assert await read_body(request, LIMIT, 5.0) == b'{"z": 2}'  # type: ignore[arg-type]


async def test_a_body_that_stops_arriving_times_out() -> None:
    request, payload = _request()
    payload.feed_data(b'{"a"')
    with pytest.raises(RequestTimeout):
        await read_body(request, LIMIT, 0.0)  # type: ignore[arg-type]
