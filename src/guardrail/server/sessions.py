"""Where counter sessions live between requests, so any worker process can continue one.

A session is stored as the JSON of ``CounterSession.to_json()``. A step runs inside
:meth:`SessionStore.edit`, which holds the session exclusively (across threads and, for SQLite,
across processes) from reading it to saving it, so two steps on one session never interleave
and the audit log never holds a step the store lost.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from guardrail.errors import GuardrailError, StoreError


class SessionExists(GuardrailError):
    """A session with this id was already opened."""


class SessionSlot:
    """One session held for editing: its stored JSON and the place to put the new one."""

    def __init__(self, session_id: str, text: str) -> None:
        self.session_id = session_id
        self.text = text
        self.saved: str | None = None

    def save(self, text: str) -> None:
        self.saved = text


class SessionStore(Protocol):
    def create(self, session_id: str, teller_id: str, text: str) -> None:
        """Store a new session; ``SessionExists`` if the id is taken."""

    def get(self, session_id: str) -> str | None:
        """The session's JSON, or None."""

    def edit(self, session_id: str) -> AbstractContextManager[SessionSlot | None]:
        """Hold the session exclusively; yields a ``SessionSlot`` (None if there is no such
        session); what was ``save``d is written when the block ends without an exception."""

    def ping(self) -> None:
        """Raise ``StoreError`` when the store cannot be reached."""

    def close(self) -> None: ...


class InMemorySessionStore:
    """Sessions in this process only: for one worker and tests."""

    def __init__(self) -> None:
        self._sessions: dict[str, str] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def create(self, session_id: str, teller_id: str, text: str) -> None:
        with self._guard:
            if session_id in self._sessions:
                raise SessionExists(f"session {session_id} already exists")
            self._sessions[session_id] = text
            self._locks[session_id] = threading.Lock()

    def get(self, session_id: str) -> str | None:
        return self._sessions.get(session_id)

    @contextmanager
    def edit(self, session_id: str) -> Iterator[SessionSlot | None]:
        lock = self._locks.get(session_id)
        if lock is None:
            yield None
            return
        with lock:
            slot = SessionSlot(session_id, self._sessions[session_id])
            yield slot
            if slot.saved is not None:
                self._sessions[session_id] = slot.saved

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    teller_id TEXT NOT NULL,
    body TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


class SQLiteSessionStore:
    """Sessions in one SQLite file (WAL, durable commits), shared by the worker processes of
    one machine. An edit holds SQLite's write lock (``BEGIN IMMEDIATE``) until it saves."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._timeout = busy_timeout_s
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreError(f"session store {self.path}: cannot open: {error}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        except sqlite3.Error as error:
            raise StoreError(f"session store {self.path}: {error}") from None
        finally:
            conn.close()

    def create(self, session_id: str, teller_id: str, text: str) -> None:
        with self._connect() as conn:
            try:
                conn.execute(
                    "INSERT INTO sessions (session_id, teller_id, body, version) "
                    "VALUES (?, ?, ?, 1)",
                    (session_id, teller_id, text),
                )
            except sqlite3.IntegrityError:
                raise SessionExists(f"session {session_id} already exists") from None

    def get(self, session_id: str) -> str | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT body FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def edit(self, session_id: str) -> Iterator[SessionSlot | None]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT body FROM sessions WHERE session_id = ?", (session_id,)
                ).fetchone()
                slot = None if row is None else SessionSlot(session_id, str(row[0]))
                yield slot
                if slot is not None and slot.saved is not None:
                    conn.execute(
                        "UPDATE sessions SET body = ?, version = version + 1, "
                        "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                        "WHERE session_id = ?",
                        (slot.saved, session_id),
                    )
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute("SELECT 1 FROM sessions LIMIT 1").fetchall()

    def close(self) -> None:
        return None
