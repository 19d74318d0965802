"""Regression tests for the history-store defects found by fuzzing (issue 9: 1, 9, 12)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from context_factory import at

from guardrail.context import HistoryRecord, InMemoryHistoryStore, SQLiteHistoryStore
from guardrail.errors import StoreError
from guardrail.model.event import Channel, Direction, TransactionKind


def rec(
    event_id: str, when: dt.datetime, *, customer: str = "C1", payee: str | None = None
) -> HistoryRecord:
    return HistoryRecord(
        event_id=event_id,
        customer_id=customer,
        account_id="A-" + customer,
        kind=TransactionKind.CASH_WITHDRAWAL,
        direction=Direction.OUT,
        channel=Channel.COUNTER,
        amount_fen=100,
        timestamp=when,
        counterparty_account=payee,
    )


def _store(
    kind: str, path: Path, retention: dt.timedelta | None
) -> InMemoryHistoryStore | SQLiteHistoryStore:
    return (
        InMemoryHistoryStore(retention) if kind == "memory" else SQLiteHistoryStore(path, retention)
    )


# Defect 9: a full disk was reported as "cannot rollback - no transaction is active".
def test_disk_full_is_reported_as_such_and_nothing_is_half_written(tmp_path: Path) -> None:
    store = SQLiteHistoryStore(tmp_path / "h.db")
    store.record(rec("kept", at("2025-03-03 09:00")))
    probe = sqlite3.connect(tmp_path / "h.db")
    pages = probe.execute("PRAGMA page_count").fetchone()[0]
    probe.close()
    assert store._conn is not None
    store._conn.execute(f"PRAGMA max_page_count={pages + 2}")  # the disk fills up here
    many = [
        rec(f"e{i}", at("2025-03-03 10:00") + dt.timedelta(seconds=i), payee=f"P{i}")
        for i in range(2000)
    ]
    with pytest.raises(StoreError, match="database or disk is full") as caught:
        store.record_many(many)
    assert str(tmp_path / "h.db") in str(caught.value)
    assert len(store) == 1  # all or nothing
    store.record(rec("after", at("2025-03-03 11:00")))  # the store is still usable
    assert len(store) == 2
    store.close()


class _CountingId(str):
    """An event id that counts how often it is compared."""

    comparisons = 0

    def __lt__(self, other: object) -> bool:
        _CountingId.comparisons += 1
        return str.__lt__(self, other)  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        _CountingId.comparisons += 1
        return str.__gt__(self, other)  # type: ignore[operator]

    __hash__ = str.__hash__


def test_many_records_sharing_a_timestamp_insert_in_log_time() -> None:
    store = InMemoryHistoryStore()
    when = at("2025-03-03 09:00")
    count = 2000
    # Same instant, so none is appended at the end; ascending ids, so each one goes last.
    ids = [_CountingId(f"e{i:06d}") for i in range(count)]
    _CountingId.comparisons = 0
    for event_id in ids:
        store.record(rec(event_id, when))
    # A linear scan among equal timestamps made about count**2 / 2 (two million) comparisons.
    assert _CountingId.comparisons < count * 30
    records = store.for_customer("C1", None)
    assert [r.event_id for r in records] == sorted(ids)
    _CountingId.comparisons = 0
    assert store.evict_before(when + dt.timedelta(microseconds=1)) == count  # removal too
    assert _CountingId.comparisons < count * 30
    assert store.for_customer("C1", None) == []
