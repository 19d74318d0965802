"""History in an embedded SQLite file (WAL mode), for the processes of one host."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from guardrail.context.history.records import (
    ROW_COLUMNS,
    HistoryRecord,
    KeyedReads,
    plausible_micros,
    record_from_row,
    record_row,
    utc_micros,
)
from guardrail.context.history.retention import (
    DEFAULT_PAYEE_HORIZON,
    RetentionClock,
    micros_or_none,
)
from guardrail.context.history.sqlite_migrations import MIGRATIONS
from guardrail.context.sqlite_schema import migrate_sqlite
from guardrail.errors import StoreError
from guardrail.model.event import MAX_CLOCK_SKEW

_INSERT = (
    f"INSERT OR IGNORE INTO history ({ROW_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_NOTE_COUNTERPARTY = "INSERT OR IGNORE INTO counterparty_earliest VALUES (?, ?, ?, ?, ?)"
_KEEP_TWO_EARLIEST = (
    "DELETE FROM counterparty_earliest WHERE customer_id = ?1 AND counterparty_account = ?2"
    " AND (ts_us, event_id) > (SELECT ts_us, event_id FROM counterparty_earliest"
    " WHERE customer_id = ?1 AND counterparty_account = ?2"
    " ORDER BY ts_us, event_id LIMIT 1 OFFSET 1)"
)
_NOTE_LAST_SEEN = (
    "INSERT INTO counterparty_last_seen VALUES (?, ?, ?) ON CONFLICT DO UPDATE"
    " SET last_us = max(last_us, excluded.last_us)"
)
_FORGET_PAYEES = (
    "DELETE FROM counterparty_earliest WHERE (customer_id, counterparty_account) IN"
    " (SELECT customer_id, counterparty_account FROM counterparty_last_seen WHERE last_us < ?1)"
)
_FORGET_LAST_SEEN = "DELETE FROM counterparty_last_seen WHERE last_us < ?"
# Forgetting old payees scans an index; once per hour of event time is often enough.
_FORGET_STEP_US = 3_600_000_000


class SQLiteHistoryStore(KeyedReads):
    """History in an embedded SQLite file (WAL mode); survives a restart of the process.

    Instants are stored as UTC microseconds for ordering and range scans, beside the original
    ISO text so each timestamp comes back with the offset it was recorded with.
    ``path=":memory:"`` gives a private, non-persistent database (useful in tests).
    Retention, refusal of future timestamps and ``payee_horizon`` work as in
    ``InMemoryHistoryStore``; a write that fails raises ``StoreError`` with SQLite's reason.
    """

    def __init__(
        self,
        path: str | Path,
        retention: timedelta | None = None,
        *,
        payee_horizon: timedelta | None = DEFAULT_PAYEE_HORIZON,
    ) -> None:
        self._retention_us = micros_or_none(retention, "retention")
        self._payee_horizon_us = micros_or_none(payee_horizon, "payee_horizon")
        self._path = str(path)
        self._lock = threading.Lock()
        # One connection shared under a lock: sqlite3 objects are not safe for unguarded
        # concurrent use, and a counter's write rate is far below what one connection serves.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self._path, check_same_thread=False, isolation_level=None
        )
        conn = self._conn
        conn.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL survives a process crash; only a power loss may drop the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        # Index inserts land all over the (customer, time) B-trees; SQLite's default 2 MiB page
        # cache turns a large history into disk traffic, so give it 64 MiB.
        conn.execute("PRAGMA cache_size=-65536")
        migrate_sqlite(conn, "history", MIGRATIONS, self._path)
        # Resume the clock from the newest records; capped at the wall clock for a file written
        # before future timestamps were refused.
        latest = utc_micros(datetime.now(UTC) + MAX_CLOCK_SKEW)
        newest = conn.execute(
            "SELECT ts_us FROM history ORDER BY ts_us DESC LIMIT ?", (RetentionClock.SPAN,)
        ).fetchall()
        self._clock = RetentionClock(min(key, latest) for (key,) in reversed(newest))
        self._evicted_to: int | None = None
        self._payees_forgotten_to: int | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"history store {self._path} is closed")
        return self._conn

    def record(self, rec: HistoryRecord) -> None:
        self.record_many((rec,))

    def record_many(self, recs: Iterable[HistoryRecord]) -> None:
        """Record several records in one transaction (bulk load); all or nothing."""
        keyed = [(plausible_micros(rec), rec) for rec in recs]
        if not keyed:
            return
        payees = [
            (
                rec.customer_id,
                rec.counterparty_account,
                key,
                rec.event_id,
                rec.timestamp.isoformat(),
            )
            for key, rec in keyed
            if rec.counterparty_account is not None
        ]
        with self._lock:
            conn = self._connection()
            clock = self._clock.copy()  # kept only if the transaction commits
            now = max(clock.advance(key) for key, _ in keyed)
            cutoff: int | None = None
            if self._retention_us is not None:
                cutoff = now - self._retention_us
                keyed = [(key, rec) for key, rec in keyed if key >= cutoff]
            forget_before: int | None = None
            if self._payee_horizon_us is not None:
                forget_before = now - self._payee_horizon_us
                done = self._payees_forgotten_to
                if done is not None and forget_before < done + _FORGET_STEP_US:
                    forget_before = None
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_INSERT, [record_row(rec, key) for key, rec in keyed])
                # Noted even for records too old to keep: a late record still proves the payee.
                conn.executemany(_NOTE_COUNTERPARTY, payees)
                conn.executemany(_KEEP_TWO_EARLIEST, {(row[0], row[1]) for row in payees})
                conn.executemany(_NOTE_LAST_SEEN, [row[:3] for row in payees])
                evict = cutoff is not None and (
                    self._evicted_to is None or cutoff > self._evicted_to
                )
                if evict:
                    conn.execute("DELETE FROM history WHERE ts_us < ?", (cutoff,))
                if forget_before is not None:
                    conn.execute(_FORGET_PAYEES, (forget_before,))
                    conn.execute(_FORGET_LAST_SEEN, (forget_before,))
                conn.execute("COMMIT")
            except sqlite3.Error as error:
                self._roll_back(conn)
                raise StoreError(f"history store {self._path}: {error}") from error
            except BaseException:
                self._roll_back(conn)
                raise
            self._clock = clock
            if evict:
                self._evicted_to = cutoff
            if forget_before is not None:
                self._payees_forgotten_to = forget_before

    @staticmethod
    def _roll_back(conn: sqlite3.Connection) -> None:
        # SQLite rolls back by itself on some errors (a full disk among them); a second
        # ROLLBACK would then replace the real reason with "no transaction is active".
        if conn.in_transaction:
            with suppress(sqlite3.Error):  # the error being raised says more
                conn.execute("ROLLBACK")

    def _select(self, column: str, value: str, since: datetime | None) -> list[HistoryRecord]:
        sql = f"SELECT {ROW_COLUMNS} FROM history WHERE {column} = ?"
        params: tuple[object, ...] = (value,)
        if since is not None:
            sql += " AND ts_us >= ?"
            params = (value, utc_micros(since))
        sql += " ORDER BY ts_us, event_id"
        with self._lock:
            rows = self._connection().execute(sql, params).fetchall()
        return [record_from_row(row) for row in rows]

    def earliest_with_counterparty(
        self, customer_id: str, counterparty_account: str
    ) -> Sequence[tuple[datetime, str]]:
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT ts_iso, event_id FROM counterparty_earliest WHERE customer_id = ?"
                    " AND counterparty_account = ? ORDER BY ts_us, event_id LIMIT 2",
                    (customer_id, counterparty_account),
                )
                .fetchall()
            )
        return [(datetime.fromisoformat(ts_iso), event_id) for ts_iso, event_id in rows]

    def evict_before(self, cutoff: datetime) -> int:
        with self._lock:
            cursor = self._connection().execute(
                "DELETE FROM history WHERE ts_us < ?", (utc_micros(cutoff),)
            )
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __len__(self) -> int:
        with self._lock:
            count: int = self._connection().execute("SELECT COUNT(*) FROM history").fetchone()[0]
        return count

    def __enter__(self) -> SQLiteHistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
