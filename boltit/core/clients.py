"""Named API clients: each has scopes and a token of which only the SHA-256 is ever stored.

The clients file (``BOLTIT_CLIENTS_FILE``, default ``<state dir>/clients.json``) is JSON::

    {"clients": [{"name": "helpdesk", "scopes": ["classify", "feedback"],
                  "token_sha256": "<64 hex>", "created_at": "2026-12-01T11:00:00+00:00"}]}

``boltit token create`` writes it (mode 0600, atomically, under a lock); the service re-reads
it when it changes, so a revoked token stops working without a restart. ``BOLTIT_ADMIN_TOKEN``
stays valid: it is the client ``admin`` with every scope.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from filelock import FileLock

from boltit.core.errors import BadInputError, NotFoundError
from boltit.core.settings import Settings

log = logging.getLogger(__name__)

TOKEN_PREFIX = "boltit_"
ADMIN_CLIENT = "admin"  # the name BOLTIT_ADMIN_TOKEN authenticates as
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Scope(StrEnum):
    """What a client may do."""

    classify = "classify"  # POST /classify, /classify/batch
    feedback = "feedback"  # POST and PUT /tickets/{id}/feedback
    read = "read"  # GET /tickets (exports of ticket text)
    admin = "admin"  # PUT /admin/feature-flags, POST /admin/reload
    review = "review"  # the /review page: log in, confirm and correct labels


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True)
class Client:
    """One caller of the service."""

    name: str
    scopes: frozenset[Scope]
    token_sha256: str
    created_at: str
    source: str  # the clients file's path, or BOLTIT_ADMIN_TOKEN

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scopes": sorted(s.value for s in self.scopes),
            "token_sha256": self.token_sha256,
            "created_at": self.created_at,
        }


def hash_token(token: str) -> str:
    """SHA-256 hex of a token; tokens are 256 random bits, so no salt or stretching is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh token: the prefix makes a leaked one easy to find in logs and repositories."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from their names; raises with the allowed ones on a typo or an empty list."""
    scopes = set()
    for value in values:
        try:
            scopes.add(Scope(value.strip().lower()))
        except ValueError:
            allowed = ", ".join(s.value for s in Scope)
            raise BadInputError(f"unknown scope {value!r}; use one of {allowed}") from None
    if not scopes:
        raise BadInputError("a client needs at least one --scope")
    return frozenset(scopes)


def check_name(name: str) -> str:
    """A client name as it appears in the audit history and on every feedback row."""
    if not _NAME.match(name):
        raise BadInputError(
            f"client name {name!r} must be 1-64 lower-case letters, digits, '.', '_' or '-'"
        )
    if name == ADMIN_CLIENT:
        raise BadInputError(f"client name {ADMIN_CLIENT!r} is reserved for BOLTIT_ADMIN_TOKEN")
    return name


class ClientFile:
    """The clients file: read, and changed only under an exclusive lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[Client]:
        """Every client in the file ([] when it does not exist)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise BadInputError(f"cannot read clients file {self.path}: {exc}") from None
        return self._parse(text)

    def _parse(self, text: str) -> list[Client]:
        try:
            data = json.loads(text)
            entries = data["clients"]
            clients = [
                Client(
                    name=str(entry["name"]),
                    scopes=parse_scopes(entry["scopes"]),
                    token_sha256=str(entry["token_sha256"]),
                    created_at=str(entry.get("created_at", "")),
                    source=str(self.path),
                )
                for entry in entries
            ]
        except (ValueError, KeyError, TypeError, BadInputError) as exc:
            raise BadInputError(f"clients file {self.path} is not valid: {exc}") from None
        for client in clients:
            if not _HEX64.match(client.token_sha256):
                raise BadInputError(
                    f"clients file {self.path}: client {client.name!r} has no 64-hex token_sha256"
                )
        return clients

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self.path.with_name(self.path.name + ".lock"), mode=0o600):
            yield

    def _write(self, clients: list[Client]) -> None:
        body = json.dumps({"clients": [c.to_json() for c in clients]}, indent=2) + "\n"
        # Written beside the target and renamed: a reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".clients-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(body)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def create(
        self, name: str, scopes: Iterable[str], *, now: datetime | None = None
    ) -> tuple[Client, str]:
        """Add a client; returns it and its token, which is shown once and never stored."""
        name = check_name(name)
        wanted = parse_scopes(scopes)
        token = new_token()
        with self._locked():
            clients = self.read()
            if any(c.name == name for c in clients):
                raise BadInputError(
                    f"client {name!r} already exists; revoke it first to issue a new token"
                )
            client = Client(
                name=name,
                scopes=wanted,
                token_sha256=hash_token(token),
                created_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
                source=str(self.path),
            )
            self._write([*clients, client])
        return client, token

    def revoke(self, name: str) -> Client:
        """Remove a client; its token stops working at the service's next request."""
        with self._locked():
            clients = self.read()
            match = next((c for c in clients if c.name == name), None)
            if match is None:
                raise NotFoundError(f"no client named {name!r} in {self.path}")
            self._write([c for c in clients if c.name != name])
        return match


class ClientRegistry:
    """The clients a service accepts: the file's (re-read when it changes) plus the admin token."""

    def __init__(self, settings: Settings) -> None:
        self.file = ClientFile(settings.clients_path)
        admin = settings.admin_token_value()
        self._admin = (
            Client(
                name=ADMIN_CLIENT,
                scopes=ALL_SCOPES,
                token_sha256=hash_token(admin),
                created_at="",
                source="BOLTIT_ADMIN_TOKEN",
            )
            if admin
            else None
        )
        self._stamp: tuple[int, int] | None = None
        self._clients: list[Client] = []
        self._refresh()  # a broken file at start is an error the operator sees at once

    def _refresh(self) -> None:
        """Re-read the file when its size or modification time changed (one ``stat`` call)."""
        try:
            info = self.file.path.stat()
            stamp: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp  # a broken version is reported once, not on every request
        self._clients = self.file.read() if stamp is not None else []

    def refresh(self) -> None:
        """Follow the file; a file broken by hand later keeps the clients read before."""
        try:
            self._refresh()
        except BadInputError as exc:
            log.warning("%s; keeping the %d clients read before", exc, len(self._clients))

    @property
    def clients(self) -> list[Client]:
        return [*self._clients, *([self._admin] if self._admin else [])]

    def authenticate(self, token: str) -> Client | None:
        """The client holding ``token``; every stored hash is compared in constant time."""
        self.refresh()
        presented = hash_token(token).encode()
        found = None
        for client in self.clients:
            if hmac.compare_digest(presented, client.token_sha256.encode()):
                found = client
        return found

    def any_with(self, scope: Scope) -> bool:
        """Whether any configured client holds ``scope``."""
        return any(client.allows(scope) for client in self.clients)
