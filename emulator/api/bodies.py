"""Request bodies, read once: bounded in bytes (decoded, so a small gzip body cannot inflate past the limit),
in time (a client that stops sending mid-body gets a 408), and decoded by us, not by aiohttp.

The app turns aiohttp's own decompression off (`auto_decompress=False` in emulator/app.py): aiohttp inflates
a body as it arrives, before any handler can refuse it, and answers a body that is not what its
Content-Encoding says with a plain-text 500. Here the raw bytes are inflated chunk by chunk, never more than
the limit plus one byte, and a bad encoding is a JSON 400 like any other client error.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Protocol

from aiohttp import web

from emulator.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

# What `--max-body-bytes` bounds: the body after decoding. The raw (encoded) body is bounded too, with room
# for an encoding that does not compress (stored blocks, random data).
RAW_SLACK_BYTES = 64 * 1024
READ_CHUNK_BYTES = 64 * 1024
ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")


class _Decoder(Protocol):
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...


class _Identity:
    eof = True
    unused_data = b""

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes:
        return data


async def read_body(request: web.BaseRequest, limit: int, timeout: float) -> bytes:
    """The request body, decoded per its Content-Encoding (read it once: the stream is consumed). Raises
    PayloadTooLarge past `limit` decoded bytes, RequestTimeout when the body has not fully arrived within
    `timeout` seconds, BadRequest or UnsupportedMediaType for an encoding that is wrong or not one of
    ENCODINGS."""
    decoder = _decoder(request.headers.get("Content-Encoding", ""))
    if not request.body_exists:
        return b""
    length = request.content_length
    if length is not None and isinstance(decoder, _Identity) and length > limit:
        raise _too_large(limit)
    body = _Body(request, decoder, limit)
    content = request.content
    if content.is_eof():  # the whole body came with the head (most do): nothing to wait for, no timer
        body.feed(content.read_nowait())
        return body.decoded()
    try:
        async with asyncio.timeout(timeout):
            while chunk := await content.read(READ_CHUNK_BYTES):
                body.feed(chunk)
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {timeout:g} seconds (the emulator's --body-timeout)"
        ) from None
    return body.decoded()


class _Body:
    """A body decoded as its raw chunks arrive, within the limits on both its raw and decoded bytes."""

    def __init__(self, request: web.BaseRequest, decoder: _Decoder, limit: int):
        self._request = request
        self._decoder = decoder
        self._limit = limit
        identity = isinstance(decoder, _Identity)
        self._raw_limit = limit + RAW_SLACK_BYTES if identity else 2 * limit + RAW_SLACK_BYTES
        self._raw = 0
        self._body = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._raw += len(chunk)
        if self._raw > self._raw_limit:
            raise _too_large(self._limit)
        try:
            self._body += self._decoder.decompress(chunk, self._limit + 1 - len(self._body))
        except zlib.error:
            raise _not_encoded(self._request) from None
        if len(self._body) > self._limit:
            raise _too_large(self._limit)
        if self._decoder.unused_data:
            raise _not_encoded(self._request, "data follows the end of the compressed stream")

    def decoded(self) -> bytes:
        if not self._decoder.eof:
            raise _not_encoded(self._request, "the compressed stream is cut short")
        return bytes(self._body)


def _decoder(header: str) -> _Decoder:
    encoding = header.strip().lower()
    if encoding in ("", "identity"):
        return _Identity()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":  # RFC 9110: the zlib format; raw deflate is what some clients send instead
        return _Deflate()
    raise UnsupportedMediaType(
        f"Content-Encoding '{header[:64]}' is not supported; send the body as one of: {', '.join(ENCODINGS)}"
    )


class _Deflate:
    """zlib-wrapped deflate, or raw deflate when the first byte is not a zlib header (as aiohttp does)."""

    def __init__(self) -> None:
        self._inner: zlib._Decompress | None = None

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes:
        if self._inner is None:
            raw = bool(data) and data[0] & 0x0F != 8
            self._inner = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        return self._inner.decompress(data, max_length)

    @property
    def eof(self) -> bool:
        return self._inner is not None and self._inner.eof

    @property
    def unused_data(self) -> bytes:
        return b"" if self._inner is None else self._inner.unused_data


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes (--max-body-bytes)")


def _not_encoded(request: web.BaseRequest, why: str = "") -> BadRequest:
    encoding = request.headers.get("Content-Encoding", "")
    return BadRequest(f"Request body is not valid {encoding[:64]} data{f': {why}' if why else ''}")
