"""The reads of one snapshot of an audit log kept in SQL tables (SQLite, PostgreSQL).

Both stores keep the same four tables (meta, head, records, checkpoints) under their own
names and placeholders; a store's reader says how to fetch rows, and everything else is here.
Values are read tolerantly (bytes and odd types become text) so that a tampered file reaches
verification instead of crashing the read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from guardrail.audit.store import AuditStoreError, Checkpoint, Head, LogMeta, StoredRecord

RECORD_COLUMNS = "seq, recorded_at, kind, case_id, prev_hash, record_hash, mac, payload"
Row = Sequence[Any]


def text(value: Any) -> str:
    """A column value as text, whatever a tampered log holds (bytes round-trip exactly)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def integer(value: Any) -> int:
    """A column value as an integer, or a clear error naming the corrupt value."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AuditStoreError(f"a stored integer is corrupt: {value!r:.40}") from None


def record_of(row: Row) -> StoredRecord:
    """A stored record from a row of ``RECORD_COLUMNS``."""
    return StoredRecord(integer(row[0]), *(text(v) for v in row[1:8]))


class SQLSnapshotReader:
    """An :class:`~guardrail.audit.store.AuditReader` over one open snapshot. Subclasses give
    ``_rows`` (all rows of a query) and ``_stream`` (rows in batches, for long scans)."""

    def __init__(self, table_prefix: str, placeholder: str) -> None:
        self._meta = f"{table_prefix}meta"
        self._head = f"{table_prefix}head"
        self._records = f"{table_prefix}records"
        self._checkpoints = f"{table_prefix}checkpoints"
        self._mark = placeholder

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[Row]:
        raise NotImplementedError

    def _first(self, sql: str) -> Row | None:
        rows = self._rows(sql)
        return rows[0] if rows else None

    def meta(self) -> LogMeta | None:
        row = self._first(
            "SELECT log_id, format_version, created_at, signing_key_id, masking_key_id,"
            f" checkpoint_every, mac FROM {self._meta} WHERE id = 1"
        )
        if row is None:
            return None
        return LogMeta(
            text(row[0]),
            integer(row[1]),
            text(row[2]),
            text(row[3]),
            text(row[4]),
            integer(row[5]),
            text(row[6]),
        )

    def head(self) -> Head | None:
        row = self._first(
            f"SELECT seq, record_hash, updated_at, mac FROM {self._head} WHERE id = 1"
        )
        return None if row is None else Head(integer(row[0]), *(text(v) for v in row[1:4]))

    def last(self) -> StoredRecord | None:
        row = self._first(f"SELECT {RECORD_COLUMNS} FROM {self._records} ORDER BY seq DESC LIMIT 1")
        return None if row is None else record_of(row)

    def iterate(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[StoredRecord]:
        upper = (1 << 62) if to_seq is None else to_seq
        sql = (
            f"SELECT {RECORD_COLUMNS} FROM {self._records}"
            f" WHERE seq >= {self._mark} AND seq <= {self._mark} ORDER BY seq"
        )
        for row in self._stream(sql, (from_seq, upper)):
            yield record_of(row)

    def case(self, case_id: str) -> Iterator[StoredRecord]:
        """All records of one case, in seq order (uses the case index)."""
        sql = f"SELECT {RECORD_COLUMNS} FROM {self._records} WHERE case_id = {self._mark}"
        for row in self._rows(sql + " ORDER BY seq", (case_id,)):
            yield record_of(row)

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._rows(
            f"SELECT seq, record_hash, created_at, mac FROM {self._checkpoints} ORDER BY seq"
        )
        return [Checkpoint(integer(r[0]), *(text(v) for v in r[1:4])) for r in rows]
