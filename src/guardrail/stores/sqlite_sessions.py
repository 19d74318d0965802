"""Counter sessions in a SQLite file, for the processes of one host.

A hold is a lease written in the row (holder token, expiry): a second holder is refused at
once with :class:`SessionConflict`; a holder that died frees the session when its lease ends.
Saving checks the lease is still ours, so an expired, re-taken hold cannot overwrite.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from guardrail.context.sqlite_schema import migrate_sqlite
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
from guardrail.stores.urls import StoreURL

MIGRATIONS = (
    """
    CREATE TABLE guardrail_sessions (
        case_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        version INTEGER NOT NULL,
        closed INTEGER NOT NULL DEFAULT 0,
        holder TEXT,
        held_until REAL,
        updated_at REAL NOT NULL
    )
    """,
)


class _Hold(OneSaveHold):
    def __init__(self, store: SQLiteSessionStore, stored: StoredSession, token: str) -> None:
        super().__init__(stored)
        self._store = store
        self._token = token

    def _write(self, state: str, version: int, closed: bool) -> None:
        changed = self._store._write(
            "UPDATE guardrail_sessions SET state = ?, version = ?, closed = ?, holder = NULL,"
            " held_until = NULL, updated_at = ? WHERE case_id = ? AND holder = ? AND version = ?",
            (
                state,
                version,
                int(closed),
                time.time(),
                self._stored.case_id,
                self._token,
                self._stored.version,
            ),
        )
        if changed != 1:
            raise SessionConflict(
                f"session {self._stored.case_id!r}: the hold expired and someone else acted; "
                "nothing was saved"
            )


class SQLiteSessionStore:
    """A :class:`~guardrail.counter.session_store.SessionStore` in one SQLite file."""

    def __init__(self, url: StoreURL, *, lease_s: float = 60.0) -> None:
        assert url.path is not None
        self.url = url
        self._lease_s = lease_s
        try:
            self._conn = sqlite3.connect(
                str(url.path), isolation_level=None, check_same_thread=False, timeout=10
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            migrate_sqlite(self._conn, "sessions", MIGRATIONS, url.masked)
        except sqlite3.Error as exc:
            raise SessionStoreError(f"cannot open session store {url.masked}: {exc}") from None
        self._lock = threading.Lock()

    def _write(self, statement: str, params: tuple[object, ...]) -> int:
        with self._lock:
            try:
                return self._conn.execute(statement, params).rowcount
            except sqlite3.Error as exc:
                raise SessionStoreError(f"session store {self.url.masked}: {exc}") from None

    def create(self, case_id: str, state: str) -> int:
        try:
            self._write(
                "INSERT INTO guardrail_sessions (case_id, state, version, updated_at)"
                " VALUES (?, ?, 1, ?)",
                (case_id, state, time.time()),
            )
        except SessionStoreError as exc:
            if "UNIQUE" in str(exc):
                raise session_taken(case_id) from None
            raise
        return 1

    def load(self, case_id: str) -> StoredSession:
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT state, version, closed FROM guardrail_sessions WHERE case_id = ?",
                    (case_id,),
                ).fetchone()
            except sqlite3.Error as exc:
                raise SessionStoreError(f"session store {self.url.masked}: {exc}") from None
        if row is None:
            raise session_missing(case_id, self.url.masked)
        return StoredSession.from_row(case_id, row)

    @contextmanager
    def _hold(self, case_id: str) -> Iterator[SessionHold]:
        token = uuid.uuid4().hex
        now = time.time()
        taken = self._write(
            "UPDATE guardrail_sessions SET holder = ?, held_until = ? WHERE case_id = ?"
            " AND (holder IS NULL OR held_until < ?)",
            (token, now + self._lease_s, case_id, now),
        )
        if taken != 1:
            self.load(case_id)  # SessionNotFound when there is no such session
            raise session_busy(case_id)
        hold = _Hold(self, self.load(case_id), token)
        try:
            yield hold
        finally:
            if not hold.saved:
                self._write(
                    "UPDATE guardrail_sessions SET holder = NULL, held_until = NULL"
                    " WHERE case_id = ? AND holder = ?",
                    (case_id, token),
                )

    def hold(self, case_id: str) -> AbstractContextManager[SessionHold]:
        return self._hold(case_id)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
