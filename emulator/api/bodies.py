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

from emulator.errors import ApiError, BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

# What `--max-body-bytes` bounds: the body after decoding. The raw (encoded) body is bounded too, with room
# for an encoding that does not compress (stored blocks, random data).
RAW_SLACK_BYTES = 64 * 1024
READ_CHUNK_BYTES = 64 * 1024
ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")

_BODY = web.RequestKey("body", bytes)
_BODY_ERROR = web.RequestKey("body_error", ApiError)


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


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The request body, decoded per its Content-Encoding; read once, then the same bytes (or the same
    error) for every caller. Raises PayloadTooLarge past `limit` decoded bytes, RequestTimeout when the
    body has not fully arrived within `timeout` seconds, BadRequest or UnsupportedMediaType for an
    encoding that is wrong or not one of ENCODINGS."""
    if _BODY in request:
        return request[_BODY]
    if _BODY_ERROR in request:
        raise request[_BODY_ERROR]
    try:
        body = await _read(request, limit, timeout)
    except ApiError as exc:
        request[_BODY_ERROR] = exc
        raise
    request[_BODY] = body
    return body


async def _read(request: web.Request, limit: int, timeout: float) -> bytes:
    decoder = _decoder(request.headers.get("Content-Encoding", ""))
    if not request.body_exists:
        return b""
    length = request.content_length
    if length is not None and isinstance(decoder, _Identity) and length > limit:
        raise _too_large(limit)
    raw_limit = limit + RAW_SLACK_BYTES if isinstance(decoder, _Identity) else 2 * limit + RAW_SLACK_BYTES
    body = bytearray()
    raw = 0
    try:
        async with asyncio.timeout(timeout):
            while chunk := await request.content.read(READ_CHUNK_BYTES):
                raw += len(chunk)
                if raw > raw_limit:
                    raise _too_large(limit)
                try:
                    body += decoder.decompress(chunk, limit + 1 - len(body))
                except zlib.error:
                    raise _not_encoded(request) from None
                if len(body) > limit:
                    raise _too_large(limit)
                if decoder.unused_data:
                    raise _not_encoded(request, "data follows the end of the compressed stream")
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {timeout:g} seconds (the emulator's --body-timeout)"
        ) from None
    if not decoder.eof:
        raise _not_encoded(request, "the compressed stream is cut short")
    return bytes(body)


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


def _not_encoded(request: web.Request, why: str = "") -> BadRequest:
    encoding = request.headers.get("Content-Encoding", "")
    return BadRequest(f"Request body is not valid {encoding[:64]} data{f': {why}' if why else ''}")
