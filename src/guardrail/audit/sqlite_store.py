"""The default store: one SQLite file in WAL mode with ``synchronous=FULL``.

An append is one ``BEGIN IMMEDIATE`` transaction (records, checkpoints and head together), so a
batch is all or nothing and, once :meth:`SQLiteStore.append` returns, it survives a killed
process and a power cut. Triggers refuse UPDATE and DELETE on records and checkpoints: a guard
against accidents, not against someone with the file (that is what verification is for).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import astuple
from pathlib import Path
from typing import Any
from urllib.parse import quote

from guardrail.audit.sql_reader import Row, SQLSnapshotReader
from guardrail.audit.store import (
    AppendConflict,
    AuditReader,
    AuditStoreError,
    Checkpoint,
    Head,
    LogMeta,
    SnapshotReads,
    StoredRecord,
)
from guardrail.context.sqlite_schema import migrate_sqlite, refuse_newer

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    log_id TEXT NOT NULL,
    format_version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    signing_key_id TEXT NOT NULL,
    masking_key_id TEXT NOT NULL,
    checkpoint_every INTEGER NOT NULL,
    mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    record_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    case_id TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    mac TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_case ON records (case_id);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    record_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
"""

# Forward migrations, applied in order once each (version table ``guardrail_schema``). The
# first is idempotent, so logs created before the version table existed adopt version 1.
MIGRATIONS = (_SCHEMA,)
_TABLES = {"meta", "head", "records", "checkpoints"}


class _Reader(SQLSnapshotReader):
    """Reads on one SQLite connection, inside the snapshot its caller opened."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        super().__init__("", "?")
        self._conn = conn
        self._path = path

    def _cursor(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise AuditStoreError(f"{self._path}: cannot read the log: {exc}") from None

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self._cursor(sql, params)
        try:
            return cursor.fetchall()
        except sqlite3.DatabaseError as exc:
            raise AuditStoreError(f"{self._path}: cannot read the log: {exc}") from None

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[Row]:
        cursor = self._cursor(sql, params)
        while True:
            try:
                rows = cursor.fetchmany(512)
            except sqlite3.DatabaseError as exc:
                raise AuditStoreError(f"{self._path}: cannot read the log: {exc}") from None
            if not rows:
                return
            yield from rows


class SQLiteStore(SnapshotReads):
    """An :class:`~guardrail.audit.store.AuditStore` in one SQLite file (WAL, durable commits).

    Thread-safe (writes are serialised by a lock; each snapshot reads on its own connection)
    and safe for several processes (``BEGIN IMMEDIATE`` plus the head compare-and-swap).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        if not create and not self.path.is_file():
            raise AuditStoreError(f"{self.path}: no audit log at this path")
        self._conn = self._connect()
        try:
            if create:
                migrate_sqlite(self._conn, "audit", MIGRATIONS, str(self.path))
            else:
                refuse_newer(self._conn, "audit", len(MIGRATIONS), str(self.path))
            self._check_schema(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise AuditStoreError(f"{self.path}: not a usable audit log: {exc}") from None
        except AuditStoreError:
            self._conn.close()
            raise
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path))}?mode=rwc"
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise AuditStoreError(f"{self.path}: cannot open: {exc}") from None
        conn.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise AuditStoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise AuditStoreError(f"{self.path}: not a usable audit log: {exc}") from None
        return conn

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        names = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        missing = _TABLES - names
        if missing:
            raise AuditStoreError(
                f"{self.path}: not a guardrail audit log (missing tables: {sorted(missing)})"
            )

    # -- writes ---------------------------------------------------------------------------
    def initialize(self, meta: LogMeta, head: Head) -> LogMeta:
        with self._lock:
            self._ensure_open()
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                existing = _Reader(conn, self.path).meta()
                if existing is None:
                    conn.execute(
                        "INSERT INTO meta VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                        astuple(meta),
                    )
                    conn.execute(
                        "INSERT INTO head VALUES (1, ?, ?, ?, ?)",
                        astuple(head),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return meta if existing is None else existing

    def append(
        self,
        records: Sequence[StoredRecord],
        *,
        head: Head,
        checkpoints: Sequence[Checkpoint],
        expected_seq: int,
    ) -> list[int]:
        with self._lock:
            self._ensure_open()
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute("SELECT seq FROM head WHERE id = 1").fetchone()
                current = None if row is None else int(row[0])
                if current != expected_seq:
                    raise AppendConflict(f"the log's head is at {current}, expected {expected_seq}")
                conn.executemany(
                    "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [astuple(r) for r in records],
                )
                conn.executemany(
                    "INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                    [astuple(c) for c in checkpoints],
                )
                conn.execute(
                    "UPDATE head SET seq = ?, record_hash = ?, updated_at = ?, mac = ? "
                    "WHERE id = 1",
                    astuple(head),
                )
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise AppendConflict(f"concurrent append: {exc}") from None
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return [r.seq for r in records]

    # -- reads ----------------------------------------------------------------------------
    @contextmanager
    def _snapshot(self) -> Iterator[_Reader]:
        self._ensure_open()
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            yield _Reader(conn, self.path)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    def snapshot(self) -> AbstractContextManager[AuditReader]:
        """A consistent read view on its own connection (one read transaction)."""
        return self._snapshot()

    def _ensure_open(self) -> None:
        if self._closed:
            raise AuditStoreError(f"{self.path}: the store is closed")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
