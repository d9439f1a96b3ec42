"""Access tokens minted by the emulated IMS, with expiry on the emulator clock."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

TOKEN_LIFETIME_SECONDS = 86399


@dataclass(frozen=True)
class Token:
    value: str
    client_id: str
    expires_ms: int


class Tokens:
    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}

    def mint(self, client_id: str, now_ms: int) -> Token:
        token = Token(
            value=f"emulator-{secrets.token_urlsafe(24)}",
            client_id=client_id,
            expires_ms=now_ms + TOKEN_LIFETIME_SECONDS * 1000,
        )
        self._tokens[token.value] = token
        return token

    def valid(self, value: str, now_ms: int) -> Token | None:
        token = self._tokens.get(value)
        if token is None or token.expires_ms <= now_ms:
            return None
        return token

    def clear(self) -> None:
        self._tokens.clear()
