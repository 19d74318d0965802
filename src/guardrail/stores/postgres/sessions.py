"""Counter sessions in PostgreSQL: any teller process can load, continue and close a session.

A hold is a transaction holding the session's row lock, taken with ``FOR UPDATE NOWAIT``: a
second process acting on the same session is refused at once with :class:`SessionConflict`
(nothing applied, nothing waiting); the lock dies with its connection, so a crashed holder
never blocks the session. The save also checks the version column, a second line of defence.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from guardrail.counter.session_store import (
    OneSaveHold,
    SessionConflict,
    SessionHold,
    SessionStoreError,
    StoredSession,
    session_busy,
    session_missing,
    session_taken,
)
from guardrail.stores.postgres.connect import describe, open_pool
from guardrail.stores.postgres.migrations import migrate
from guardrail.stores.urls import StoreURL

COMPONENT = "sessions"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE guardrail_sessions (
        case_id text PRIMARY KEY,
        state text NOT NULL,
        version integer NOT NULL,
        closed boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX guardrail_sessions_open ON guardrail_sessions (updated_at) WHERE NOT closed;
    """,
)


class _Hold(OneSaveHold):
    def __init__(self, conn: psycopg.Connection[Any], stored: StoredSession) -> None:
        super().__init__(stored)
        self._conn = conn

    def _write(self, state: str, version: int, closed: bool) -> None:
        cursor = self._conn.execute(
            "UPDATE guardrail_sessions SET state = %s, version = %s, closed = %s,"
            " updated_at = now() WHERE case_id = %s AND version = %s",
            (state, version, closed, self._stored.case_id, self._stored.version),
        )
        if cursor.rowcount != 1:
            raise SessionConflict(
                f"session {self._stored.case_id!r} changed since it was read; nothing was saved"
            )


class PostgresSessionStore:
    """A :class:`~guardrail.counter.session_store.SessionStore` in PostgreSQL."""

    def __init__(self, url: StoreURL, *, timeout_s: float = 5.0, pool_size: int = 4) -> None:
        self.url = url
        self._pool: ConnectionPool = open_pool(
            url,
            max_size=pool_size,
            connect_timeout_s=timeout_s,
            statement_timeout_ms=int(timeout_s * 1000),
            what="session store",
        )
        try:
            with self._pool.connection() as conn:
                migrate(conn, COMPONENT, MIGRATIONS, url.masked)
        except psycopg.Error as exc:
            self._pool.close()
            raise SessionStoreError(f"session store {url.masked}: {describe(exc, url)}") from None
        except BaseException:
            self._pool.close()
            raise

    def _error(self, exc: BaseException) -> SessionStoreError:
        if isinstance(exc, PoolTimeout):
            return SessionStoreError(f"session store {self.url.masked}: no connection (down?)")
        return SessionStoreError(f"session store {self.url.masked}: {describe(exc, self.url)}")

    def create(self, case_id: str, state: str) -> int:
        try:
            with self._pool.connection() as conn:
                conn.execute(
                    "INSERT INTO guardrail_sessions (case_id, state, version) VALUES (%s, %s, 1)",
                    (case_id, state),
                )
        except pg_errors.UniqueViolation:
            raise session_taken(case_id) from None
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error(exc) from None
        return 1

    def load(self, case_id: str) -> StoredSession:
        try:
            with self._pool.connection() as conn:
                row = conn.execute(
                    "SELECT state, version, closed FROM guardrail_sessions WHERE case_id = %s",
                    (case_id,),
                ).fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error(exc) from None
        if row is None:
            raise session_missing(case_id, self.url.masked)
        return StoredSession.from_row(case_id, row)

    @contextmanager
    def _hold(self, case_id: str) -> Iterator[SessionHold]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                try:
                    row = conn.execute(
                        "SELECT state, version, closed FROM guardrail_sessions"
                        " WHERE case_id = %s FOR UPDATE NOWAIT",
                        (case_id,),
                    ).fetchone()
                except pg_errors.LockNotAvailable:
                    raise session_busy(case_id) from None
                if row is None:
                    raise session_missing(case_id, self.url.masked)
                yield _Hold(conn, StoredSession.from_row(case_id, row))
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error(exc) from None

    def hold(self, case_id: str) -> AbstractContextManager[SessionHold]:
        return self._hold(case_id)

    def close(self) -> None:
        self._pool.close()
