"""Access tokens minted by the emulated IMS (expiry on the emulator clock), and the optional credentials file.

The credentials file (YAML or JSON, `schemas/credentials.schema.json`) lists the API clients IMS accepts:

    clients:
      my-client-id:
        secret: my-client-secret
        orgs: ["ACME@AdobeOrg"]        # optional: the orgs its tokens may call; omitted means any org

Without a file, IMS accepts any client id and secret.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from emulator import yamldoc
from emulator.errors import OAuthError
from emulator.options import TOKEN_LIFETIME_SECONDS
from emulator.validation import Schemas, bundled_schemas

CREDENTIALS_SCHEMA = "credentials"
# Tokens are kept until reset. Past this many per client id, that client's oldest is forgotten: a client
# minting in a loop cannot push out another's live tokens. Past MAX_TOKENS in all (many client ids, as any
# id is accepted without a credentials file), the oldest of all goes, so minting cannot exhaust memory.
MAX_TOKENS_PER_CLIENT = 1_000
MAX_TOKENS = 100_000


class CredentialsError(Exception):
    """A credentials file that cannot be used: where (file and path inside it) and why."""

    def __init__(self, source: str, path: str, reason: str):
        super().__init__(f"{source}: {path or '<document>'}: {reason}")


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str
    orgs: frozenset[str] | None  # None: any org


class Credentials:
    def __init__(self, clients: Mapping[str, Client]):
        self.clients = dict(clients)

    def authenticate(self, client_id: str, secret: str) -> Client:
        """The client whose id and secret these are, or IMS's 401 `invalid_client`."""
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError(401, "invalid_client", "invalid client_id parameter")
        if not hmac.compare_digest(client.secret.encode(), secret.encode()):
            raise OAuthError(401, "invalid_client", "invalid client_secret parameter")
        return client


def load_credentials(path: Path | None, schemas: Schemas | None = None) -> Credentials | None:
    """The credentials file at `path` (None when no file is configured); all or nothing."""
    if path is None:
        return None
    try:
        document = yamldoc.load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(str(path), "", f"cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        where = yamldoc.error_location(exc)
        raise CredentialsError(str(path), where, f"not valid YAML or JSON: {exc}") from None
    error = (schemas or bundled_schemas()).first_error(CREDENTIALS_SCHEMA, document)
    if error is not None:
        raise CredentialsError(str(path), yamldoc.path(error.absolute_path), error.message)
    clients: dict[str, Any] = document["clients"]
    return Credentials(
        {
            client_id: Client(
                client_id=client_id,
                secret=entry["secret"],
                orgs=frozenset(entry["orgs"]) if "orgs" in entry else None,
            )
            for client_id, entry in clients.items()
        }
    )


@dataclass(frozen=True)
class Token:
    value: str
    client_id: str
    expires_ms: int
    orgs: frozenset[str] | None = None

    def allows(self, org: str) -> bool:
        return self.orgs is None or org in self.orgs


class Tokens:
    def __init__(self, credentials: Credentials | None = None) -> None:
        self.credentials = credentials
        self._tokens: dict[str, Token] = {}
        self._by_client: dict[str, dict[str, None]] = {}  # client id -> its token values, oldest first

    def issue(self, client_id: str, secret: str, now_ms: int) -> Token:
        """IMS client-credentials grant: check the client against the credentials file, then mint."""
        orgs = None
        if self.credentials is not None:
            orgs = self.credentials.authenticate(client_id, secret).orgs
        return self.mint(client_id, now_ms, orgs)

    def mint(self, client_id: str, now_ms: int, orgs: frozenset[str] | None = None) -> Token:
        token = Token(
            value=f"emulator-{secrets.token_urlsafe(24)}",
            client_id=client_id,
            expires_ms=now_ms + TOKEN_LIFETIME_SECONDS * 1000,
            orgs=orgs,
        )
        mine = self._by_client.setdefault(client_id, {})
        if len(mine) >= MAX_TOKENS_PER_CLIENT:
            self._forget(next(iter(mine)))
        elif len(self._tokens) >= MAX_TOKENS:
            self._forget(next(iter(self._tokens)))
        self._tokens[token.value] = token
        self._by_client.setdefault(client_id, {})[token.value] = None
        return token

    def _forget(self, value: str) -> None:
        token = self._tokens.pop(value)
        mine = self._by_client[token.client_id]
        del mine[value]
        if not mine:
            del self._by_client[token.client_id]

    def valid(self, value: str, now_ms: int) -> Token | None:
        token = self._tokens.get(value)
        if token is None or token.expires_ms <= now_ms:
            return None
        return token

    def clear(self) -> None:
        """Forget minted tokens (the credentials file stays)."""
        self._tokens.clear()
        self._by_client.clear()

    def __len__(self) -> int:
        return len(self._tokens)

    def state(self) -> list[dict[str, Any]]:
        """The minted tokens, oldest first (the credentials file is read again at start)."""
        return [
            {
                "value": token.value,
                "clientId": token.client_id,
                "expiresMs": token.expires_ms,
                "orgs": None if token.orgs is None else sorted(token.orgs),
            }
            for token in self._tokens.values()
        ]

    def restore(self, state: list[Mapping[str, Any]]) -> Callable[[], None]:
        """Check a saved `state()`; the returned commit puts it in place (it cannot fail)."""
        tokens = {
            str(saved["value"]): Token(
                value=str(saved["value"]),
                client_id=str(saved["clientId"]),
                expires_ms=int(saved["expiresMs"]),
                orgs=None if saved["orgs"] is None else frozenset(str(org) for org in saved["orgs"]),
            )
            for saved in state
        }

        by_client: dict[str, dict[str, None]] = {}
        for token in tokens.values():
            by_client.setdefault(token.client_id, {})[token.value] = None

        def commit() -> None:
            self._tokens = tokens
            self._by_client = by_client

        return commit
