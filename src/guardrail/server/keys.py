"""API keys: one per terminal or person, each with a role; stored only as salted hashes.

A key reads ``grk_<key id>_<secret>``. The key id (public, 12 hex digits) finds the row; the
secret (32 random bytes) is checked against ``HMAC-SHA256(salt, secret)`` with a per-key salt.
A slow password hash (scrypt) would add tens of milliseconds to every request for nothing:
the secrets are random 256-bit values, not passwords, so they cannot be guessed offline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from guardrail.errors import GuardrailError, StoreError

KEY_PREFIX = "grk"
_KEY_SHAPE = re.compile(r"^grk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME_SHAPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


class Role(StrEnum):
    """What a key may do (enforced by ``server.auth``)."""

    TELLER = "teller"  # screens and runs counter sessions as himself
    SUPERVISOR = "supervisor"  # decides escalated sessions of other tellers
    AUDITOR = "auditor"  # reads packs, sessions and reports; never screens
    ADMIN = "admin"  # manages keys


class ApiKeyError(GuardrailError, ValueError):
    """A key could not be created or revoked (bad name or role, unknown key id)."""


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's id, the person or terminal it was issued to, the role."""

    key_id: str
    name: str
    role: Role


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None


def digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("ascii"), hashlib.sha256).digest()


def split_key(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed key, else None."""
    match = _KEY_SHAPE.match(token)
    return (match.group(1), match.group(2)) if match else None


def check_name(name: str) -> str:
    if not _NAME_SHAPE.match(name):
        raise ApiKeyError(
            f"name {name!r}: 1-64 characters, letters, digits and _ . : - (the teller or "
            "supervisor id the key acts as)"
        )
    return name


class KeyStore(Protocol):
    def add(self, name: str, role: Role) -> str:
        """Create a key; returns the whole key (shown once, never stored)."""

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked key, else None."""

    def list(self) -> list[KeyInfo]: ...

    def revoke(self, key_id: str) -> KeyInfo: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    salt BLOB NOT NULL,
    digest BLOB NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class SQLiteKeyStore:
    """API keys in a SQLite file, read on every request so a revocation takes effect at once
    in every worker process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise StoreError(f"key store {self.path}: cannot open: {error}") from None
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """The one connection, held under the lock (sqlite3 objects are not thread-safe)."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as error:
                raise StoreError(f"key store {self.path}: {error}") from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, name: str, role: Role) -> str:
        check_name(name)
        role = Role(role)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (key_id, name, role.value, salt, digest(salt, secret), _now()),
            )
        return f"{KEY_PREFIX}_{key_id}_{secret}"

    def authenticate(self, token: str) -> Principal | None:
        parts = split_key(token)
        if parts is None:
            return None
        key_id, secret = parts
        with self._connect() as conn:
            row = conn.execute(
                "SELECT name, role, salt, digest FROM api_keys "
                "WHERE key_id = ? AND revoked_at IS NULL",
                (key_id,),
            ).fetchone()
        if row is None:
            return None
        name, role, salt, stored = row
        if not hmac.compare_digest(digest(bytes(salt), secret), bytes(stored)):
            return None
        return Principal(key_id=key_id, name=str(name), role=Role(role))

    def list(self) -> list[KeyInfo]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT key_id, name, role, created_at, revoked_at FROM api_keys "
                "ORDER BY created_at, key_id"
            ).fetchall()
        return [KeyInfo(str(r[0]), str(r[1]), Role(r[2]), str(r[3]), r[4]) for r in rows]

    def revoke(self, key_id: str) -> KeyInfo:
        with self._connect() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (_now(), key_id),
            )
            row = conn.execute(
                "SELECT key_id, name, role, created_at, revoked_at FROM api_keys WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        if row is None:
            raise ApiKeyError(f"no key with id {key_id!r} (see 'guardrail keys list')")
        return KeyInfo(str(row[0]), str(row[1]), Role(row[2]), str(row[3]), row[4])

    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchall()
