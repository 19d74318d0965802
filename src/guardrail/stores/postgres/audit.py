"""The audit log in PostgreSQL: one hash chain shared by every writer process of the bank.

An append is one transaction that locks the head row (``SELECT ... FOR UPDATE``), checks it is
still where the writer sealed from, inserts the records and checkpoints and moves the head; a
writer that lost the race gets :class:`AppendConflict` and the log re-seals on the new head.
Commits are synchronous, so an acknowledged record survives a killed process. Reads run in one
``REPEATABLE READ`` transaction (a consistent snapshot) and stream through a server-side
cursor. Triggers refuse UPDATE and DELETE on records and checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import astuple
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from guardrail.audit.sql_reader import Row, SQLSnapshotReader
from guardrail.audit.store import (
    AppendConflict,
    AuditReader,
    AuditStoreError,
    Checkpoint,
    Head,
    HeldHead,
    LogMeta,
    SnapshotReads,
    StoredRecord,
)
from guardrail.stores.postgres.connect import describe, open_pool
from guardrail.stores.postgres.migrations import migrate
from guardrail.stores.urls import StoreURL

COMPONENT = "audit"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE guardrail_audit_meta (
        id integer PRIMARY KEY CHECK (id = 1),
        log_id text NOT NULL,
        format_version integer NOT NULL,
        created_at text NOT NULL,
        signing_key_id text NOT NULL,
        masking_key_id text NOT NULL,
        checkpoint_every integer NOT NULL,
        mac text NOT NULL
    );
    CREATE TABLE guardrail_audit_head (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        record_hash text NOT NULL,
        updated_at text NOT NULL,
        mac text NOT NULL
    );
    CREATE TABLE guardrail_audit_records (
        seq bigint PRIMARY KEY,
        recorded_at text NOT NULL,
        kind text NOT NULL,
        case_id text NOT NULL,
        prev_hash text NOT NULL,
        record_hash text NOT NULL,
        mac text NOT NULL,
        payload text NOT NULL
    );
    CREATE INDEX guardrail_audit_records_case ON guardrail_audit_records (case_id);
    CREATE TABLE guardrail_audit_checkpoints (
        seq bigint PRIMARY KEY,
        record_hash text NOT NULL,
        created_at text NOT NULL,
        mac text NOT NULL
    );
    CREATE FUNCTION guardrail_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit % are append-only', TG_ARGV[0];
    END $$;
    CREATE TRIGGER guardrail_audit_records_append_only BEFORE UPDATE OR DELETE
        ON guardrail_audit_records FOR EACH ROW
        EXECUTE FUNCTION guardrail_audit_append_only('records');
    CREATE TRIGGER guardrail_audit_checkpoints_append_only BEFORE UPDATE OR DELETE
        ON guardrail_audit_checkpoints FOR EACH ROW
        EXECUTE FUNCTION guardrail_audit_append_only('checkpoints');
    """,
)


class _Reader(SQLSnapshotReader):
    """Reads inside one REPEATABLE READ transaction of one connection."""

    def __init__(self, conn: psycopg.Connection[Any], where: str) -> None:
        super().__init__("guardrail_audit_", "%s")
        self._conn = conn
        self._where = where

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[Row]:
        with self._conn.cursor(name="guardrail_audit_iterate") as cursor:
            cursor.itersize = 2000
            cursor.execute(sql, params)
            yield from cursor


def _insert(
    conn: psycopg.Connection[Any],
    records: Sequence[StoredRecord],
    head: Head,
    checkpoints: Sequence[Checkpoint],
) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO guardrail_audit_records VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [astuple(r) for r in records],
        )
        if checkpoints:
            cursor.executemany(
                "INSERT INTO guardrail_audit_checkpoints VALUES (%s, %s, %s, %s)",
                [astuple(c) for c in checkpoints],
            )
    conn.execute(
        "UPDATE guardrail_audit_head SET seq = %s, record_hash = %s, updated_at = %s, mac = %s"
        " WHERE id = 1",
        astuple(head),
    )


class _HeldHead:
    """The head row locked in an open transaction; committed when the hold ends."""

    def __init__(self, conn: psycopg.Connection[Any], head: Head) -> None:
        self._conn = conn
        self._head = head

    @property
    def head(self) -> Head:
        return self._head

    def append(
        self, records: Sequence[StoredRecord], *, head: Head, checkpoints: Sequence[Checkpoint]
    ) -> list[int]:
        _insert(self._conn, records, head, checkpoints)
        return [r.seq for r in records]


class PostgresAuditStore(SnapshotReads):
    """An :class:`~guardrail.audit.store.AuditStore` in PostgreSQL, safe for many writer
    processes. With ``create`` false the log must already exist (verify, report)."""

    def __init__(
        self, url: StoreURL, *, create: bool = True, timeout_s: float = 5.0, pool_size: int = 4
    ) -> None:
        self.url = url
        self.path = url.masked  # what messages and reports show as the log's name
        self._pool: ConnectionPool = open_pool(
            url,
            max_size=pool_size,
            connect_timeout_s=timeout_s,
            # appends wait on the head lock behind other writers: allow them longer
            statement_timeout_ms=int(max(timeout_s, 30.0) * 1000),
            what="audit log",
        )
        try:
            with self._pool.connection() as conn:
                if create:
                    migrate(conn, COMPONENT, MIGRATIONS, url.masked)
                else:
                    self._check_exists(conn)
        except psycopg.Error as exc:
            self._pool.close()
            raise AuditStoreError(f"audit log {url.masked}: {describe(exc, url)}") from None
        except BaseException:
            self._pool.close()
            raise

    def sql_connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A pooled connection for SQL reports over this log (``audit.period_report``)."""
        return self._pool.connection()

    def _check_exists(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute("SELECT to_regclass('guardrail_audit_records')").fetchone()
        if row is None or row[0] is None:
            raise AuditStoreError(f"{self.url.masked}: no audit log in this database")
        migrate(conn, COMPONENT, MIGRATIONS, self.url.masked)  # refuses a newer schema

    def _error(self, what: str, exc: BaseException) -> AuditStoreError:
        if isinstance(exc, PoolTimeout):
            return AuditStoreError(f"audit log {self.url.masked}: {what}: no connection (down?)")
        return AuditStoreError(f"audit log {self.url.masked}: {what}: {describe(exc, self.url)}")

    # -- writes ---------------------------------------------------------------------------
    def initialize(self, meta: LogMeta, head: Head) -> LogMeta:
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("LOCK TABLE guardrail_audit_meta IN EXCLUSIVE MODE")
                existing = _Reader(conn, self.path).meta()
                if existing is not None:
                    return existing
                conn.execute(
                    "INSERT INTO guardrail_audit_meta VALUES (1, %s, %s, %s, %s, %s, %s, %s)",
                    astuple(meta),
                )
                conn.execute(
                    "INSERT INTO guardrail_audit_head VALUES (1, %s, %s, %s, %s)",
                    astuple(head),
                )
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error("cannot initialise", exc) from None
        return meta

    def append(
        self,
        records: Sequence[StoredRecord],
        *,
        head: Head,
        checkpoints: Sequence[Checkpoint],
        expected_seq: int,
    ) -> list[int]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                row = conn.execute(
                    "SELECT seq FROM guardrail_audit_head WHERE id = 1 FOR UPDATE"
                ).fetchone()
                current = None if row is None else int(row[0])
                if current != expected_seq:
                    raise AppendConflict(f"the log's head is at {current}, expected {expected_seq}")
                _insert(conn, records, head, checkpoints)
        except psycopg.errors.UniqueViolation as exc:
            raise AppendConflict(f"concurrent append: {describe(exc, self.url)}") from None
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error("cannot append", exc) from None
        return [r.seq for r in records]

    @contextmanager
    def _hold_head(self) -> Iterator[_HeldHead]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                row = conn.execute(
                    "SELECT seq, record_hash, updated_at, mac FROM guardrail_audit_head"
                    " WHERE id = 1 FOR UPDATE"
                ).fetchone()
                if row is None:
                    raise AuditStoreError(f"audit log {self.url.masked}: the log has no head")
                yield _HeldHead(conn, Head(int(row[0]), str(row[1]), str(row[2]), str(row[3])))
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error("cannot append", exc) from None

    def hold_head(self) -> AbstractContextManager[HeldHead]:
        """Hold the head row's lock for one append (other writers wait for the commit)."""
        return self._hold_head()

    # -- reads ----------------------------------------------------------------------------
    @contextmanager
    def _snapshot(self) -> Iterator[_Reader]:
        try:
            with self._pool.connection() as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    yield _Reader(conn, self.path)
                finally:
                    conn.execute("ROLLBACK")
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error("cannot read", exc) from None

    def snapshot(self) -> AbstractContextManager[AuditReader]:
        """A consistent read view (one REPEATABLE READ transaction)."""
        return self._snapshot()

    def close(self) -> None:
        self._pool.close()
