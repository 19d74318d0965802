"""Where counter sessions live between steps, so any teller process can continue one.

A :class:`SessionStore` keeps each session's JSON (``CounterSession.to_json``) under its case id
with a version number. :meth:`SessionStore.hold` takes a session exclusively for one step: a
second holder, in this process or another, gets :class:`SessionConflict` at once (it never
waits and never applies half a step); the step's result is saved with :meth:`SessionHold.save`
and the version moves on. ``InMemorySessionStore`` is for one process; the SQLite and
PostgreSQL stores live in ``guardrail.stores`` and are opened by URL.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from guardrail.errors import StoreError


class SessionStoreError(StoreError):
    """The session store cannot be reached or read."""


class SessionNotFound(SessionStoreError, KeyError):
    """No session is stored under this case id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "session not found"


class SessionExists(SessionStoreError):
    """A session with this case id was already stored."""


class SessionConflict(SessionStoreError):
    """Someone else is acting on this session right now, or acted on it since it was read;
    nothing was applied. Reload the session and try again."""


@dataclass(frozen=True, slots=True)
class StoredSession:
    """One session as stored: its JSON, its version (1 when created) and whether it is closed."""

    case_id: str
    state: str
    version: int
    closed: bool

    @classmethod
    def from_row(cls, case_id: str, row: Sequence[Any]) -> StoredSession:
        """The session from a stored row ``(state, version, closed)``."""
        return cls(case_id, str(row[0]), int(row[1]), bool(row[2]))


def session_missing(case_id: str, where: str = "the session store") -> SessionNotFound:
    """The error for a case id with no stored session in ``where``."""
    return SessionNotFound(f"no session {case_id!r} in {where}")


def session_busy(case_id: str) -> SessionConflict:
    """The error for a session someone else holds right now."""
    return SessionConflict(f"session {case_id!r} is being acted on by someone else")


def session_taken(case_id: str) -> SessionExists:
    """The error for creating a session under a case id already stored."""
    return SessionExists(f"session {case_id!r} already exists")


class SessionHold(Protocol):
    """Exclusive access to one stored session for the length of one step."""

    @property
    def stored(self) -> StoredSession: ...

    def save(self, state: str, *, closed: bool) -> int:
        """Replace the session's JSON; returns the new version. Once per hold."""
        ...


class SessionStore(Protocol):
    """Counter sessions by case id, shared by every process that opens the same store."""

    def create(self, case_id: str, state: str) -> int:
        """Store a new session; :class:`SessionExists` if the case id is taken. Returns 1."""
        ...

    def load(self, case_id: str) -> StoredSession:
        """The stored session (read only); :class:`SessionNotFound` if there is none."""
        ...

    def hold(self, case_id: str) -> AbstractContextManager[SessionHold]:
        """Take the session for one step; :class:`SessionConflict` if another holder has it.
        Leaving the block without :meth:`SessionHold.save` changes nothing."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class OneSaveHold(ABC):
    """What every store's hold shares: the session as read, and one save that moves the
    version on by one; :meth:`_write` stores it (raising :class:`SessionConflict` if the
    session changed meanwhile)."""

    def __init__(self, stored: StoredSession) -> None:
        self._stored = stored
        self.saved = False

    @property
    def stored(self) -> StoredSession:
        return self._stored

    def save(self, state: str, *, closed: bool) -> int:
        """Replace the session's JSON; returns the new version. Once per hold."""
        if self.saved:
            raise SessionStoreError(f"session {self._stored.case_id}: saved twice in one hold")
        version = self._stored.version + 1
        self._write(state, version, closed)
        self.saved = True
        return version

    @abstractmethod
    def _write(self, state: str, version: int, closed: bool) -> None:
        """Store the new state at ``version`` over the version read."""


class _MemoryHold(OneSaveHold):
    def __init__(self, store: InMemorySessionStore, stored: StoredSession) -> None:
        super().__init__(stored)
        self._store = store

    def _write(self, state: str, version: int, closed: bool) -> None:
        with self._store._lock:
            self._store._sessions[self._stored.case_id] = StoredSession(
                self._stored.case_id, state, version, closed
            )


class InMemorySessionStore:
    """Sessions in this process's memory (tests, demos, a single teller process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, StoredSession] = {}
        self._held: set[str] = set()

    def create(self, case_id: str, state: str) -> int:
        with self._lock:
            if case_id in self._sessions:
                raise session_taken(case_id)
            self._sessions[case_id] = StoredSession(case_id, state, 1, False)
        return 1

    def load(self, case_id: str) -> StoredSession:
        with self._lock:
            stored = self._sessions.get(case_id)
        if stored is None:
            raise session_missing(case_id)
        return stored

    @contextmanager
    def _hold(self, case_id: str) -> Iterator[SessionHold]:
        with self._lock:
            stored = self._sessions.get(case_id)
            if stored is None:
                raise session_missing(case_id)
            if case_id in self._held:
                raise session_busy(case_id)
            self._held.add(case_id)
        try:
            yield _MemoryHold(self, stored)
        finally:
            with self._lock:
                self._held.discard(case_id)

    def hold(self, case_id: str) -> AbstractContextManager[SessionHold]:
        return self._hold(case_id)

    def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
