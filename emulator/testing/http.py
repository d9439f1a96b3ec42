"""A small keep-alive HTTP client on the standard library: the test client must not need `requests`."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 30.0


class InvalidURL(ValueError):
    """Not an http(s) URL with a host."""


class HttpClient:
    """One connection to one base URL, reused between calls and safe to share between threads."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT_SECONDS):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidURL(f"not an http(s) URL: '{base_url}'")
        self._secure = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Status and body; raises OSError when the server cannot be reached."""
        with self._lock:
            try:
                return self._send(method, path, body, headers or {})
            except (ConnectionError, http.client.HTTPException):
                # An idle keep-alive connection the server has closed: reconnect once.
                self.close()
                return self._send(method, path, body, headers or {})

    def _send(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._secure else http.client.HTTPConnection
            self._connection = kind(self._host, self._port, timeout=self._timeout)
        self._connection.request(method, self._prefix + path, body=body, headers=dict(headers))
        response = self._connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
