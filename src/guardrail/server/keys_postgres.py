"""API keys in PostgreSQL, shared by every worker and machine of the bank (same hashing and
key format as ``server.keys``)."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from typing import Any

import psycopg

from guardrail.errors import StoreError
from guardrail.server.keys import (
    KEY_PREFIX,
    ApiKeyError,
    KeyInfo,
    Principal,
    Role,
    check_name,
    digest,
    split_key,
)
from guardrail.stores.postgres.connect import open_pool, store_error
from guardrail.stores.postgres.migrations import migrate
from guardrail.stores.urls import StoreURL

COMPONENT = "api_keys"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE guardrail_api_keys (
        key_id text PRIMARY KEY,
        name text NOT NULL,
        role text NOT NULL,
        salt bytea NOT NULL,
        digest bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
    );
    """,
)
_COLUMNS = "key_id, name, role, created_at, revoked_at"


def _info(row: tuple[Any, ...]) -> KeyInfo:
    created: dt.datetime = row[3]
    revoked: dt.datetime | None = row[4]
    return KeyInfo(
        str(row[0]),
        str(row[1]),
        Role(row[2]),
        created.isoformat(timespec="seconds"),
        revoked.isoformat(timespec="seconds") if revoked else None,
    )


class PostgresKeyStore:
    """API keys in the ``guardrail_api_keys`` table; read on every request (a revocation
    takes effect at once everywhere)."""

    def __init__(self, url: StoreURL, *, pool_size: int = 4) -> None:
        self.url = url
        self._pool = open_pool(url, max_size=pool_size, what="key store")
        try:
            with self._pool.connection() as conn:
                migrate(conn, COMPONENT, MIGRATIONS, url.masked)
        except psycopg.Error as error:
            self._pool.close()
            raise store_error("key store", url, error) from None

    def _run(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as conn:
                cursor = conn.execute(sql, params)
                return list(cursor.fetchall()) if cursor.description else []
        except psycopg.Error as error:
            raise store_error("key store", self.url, error) from None
        except Exception as error:  # pool timeouts
            raise StoreError(f"key store {self.url.masked}: {type(error).__name__}") from None

    def add(self, name: str, role: Role) -> str:
        check_name(name)
        role = Role(role)
        key_id, secret, salt = (
            secrets.token_hex(6),
            secrets.token_urlsafe(32),
            secrets.token_bytes(16),
        )
        self._run(
            "INSERT INTO guardrail_api_keys (key_id, name, role, salt, digest) "
            "VALUES (%s, %s, %s, %s, %s)",
            (key_id, name, role.value, salt, digest(salt, secret)),
        )
        return f"{KEY_PREFIX}_{key_id}_{secret}"

    def authenticate(self, token: str) -> Principal | None:
        parts = split_key(token)
        if parts is None:
            return None
        key_id, secret = parts
        rows = self._run(
            "SELECT name, role, salt, digest FROM guardrail_api_keys "
            "WHERE key_id = %s AND revoked_at IS NULL",
            (key_id,),
        )
        if not rows:
            return None
        name, role, salt, stored = rows[0]
        if not hmac.compare_digest(digest(bytes(salt), secret), bytes(stored)):
            return None
        return Principal(key_id=key_id, name=str(name), role=Role(role))

    def list(self) -> list[KeyInfo]:
        rows = self._run(f"SELECT {_COLUMNS} FROM guardrail_api_keys ORDER BY created_at", ())
        return [_info(row) for row in rows]

    def revoke(self, key_id: str) -> KeyInfo:
        self._run(
            "UPDATE guardrail_api_keys SET revoked_at = now() "
            "WHERE key_id = %s AND revoked_at IS NULL",
            (key_id,),
        )
        rows = self._run(f"SELECT {_COLUMNS} FROM guardrail_api_keys WHERE key_id = %s", (key_id,))
        if not rows:
            raise ApiKeyError(f"no key with id {key_id!r} (see 'guardrail keys list')")
        return _info(rows[0])

    def ping(self) -> None:
        self._run("SELECT 1", ())

    def close(self) -> None:
        self._pool.close()
