"""Regression tests for the history-store defects found by fuzzing (issue 9: 1, 9, 12)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from context_factory import at, make_event

from guardrail.context import HistoryRecord, InMemoryHistoryStore, SQLiteHistoryStore
from guardrail.context.history import retention_for
from guardrail.errors import EventError, StoreError
from guardrail.guard import Guard, parse_event
from guardrail.lang.pack import load_pack
from guardrail.model.event import Channel, Direction, TransactionKind
from support import BASELINE


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


# Defect 1: one later-dated executed record blinded everyone's history.
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_one_later_dated_record_does_not_blind_the_same_day_rules(
    kind: str, tmp_path: Path
) -> None:
    pack = load_pack(BASELINE)  # 26 hours of retention
    retention = retention_for(list(pack.windows.values()))
    store = _store(kind, tmp_path / "h.db", retention)
    guard = Guard(pack, history=store)
    morning = at("2025-03-03 09:00")
    guard.record_executed(make_event("w1", morning, "30000.00"))
    # Another customer's executed transaction dated two days ahead (a terminal's wrong clock).
    guard.record_executed(
        make_event(
            "x1",
            morning + dt.timedelta(days=2),
            "100.00",
            customer_id="C9",
            account_id="6222000099990000",
        )
    )
    second = make_event("w2", morning + dt.timedelta(hours=3), "30000.00")
    assert "large_value_report" in guard.screen(second).obligations
    if kind == "sqlite":  # and after a restart
        store.close()
        reopened = SQLiteHistoryStore(tmp_path / "h.db", retention)
        again = Guard(pack, history=reopened)
        assert "large_value_report" in again.screen(second).obligations
        reopened.close()


@pytest.mark.parametrize("year", [2999, 9999])
def test_parse_event_refuses_implausible_years(year: int) -> None:
    data = make_event("e1", at("2025-03-03 09:00")).model_dump(mode="json")
    data["timestamp"] = f"{year}-03-03T09:00:00+08:00"
    with pytest.raises(EventError) as caught:
        parse_event(data)
    assert [path for path, _ in caught.value.problems] == ["timestamp"]
    assert "future" in caught.value.problems[0][1]


def test_parse_event_refuses_timestamps_before_2000() -> None:
    data = make_event("e1", at("2025-03-03 09:00")).model_dump(mode="json")
    data["timestamp"] = "1970-01-01T00:00:00+00:00"
    with pytest.raises(EventError, match="timestamp"):
        parse_event(data)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_store_refuses_a_record_dated_in_the_future(kind: str, tmp_path: Path) -> None:
    store = _store(kind, tmp_path / "h.db", dt.timedelta(hours=26))
    store.record(rec("past", at("2025-03-03 09:00")))
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    with pytest.raises(EventError) as caught:
        store.record(rec("ahead", ahead, customer="C9"))
    assert caught.value.problems[0][0] == "timestamp"
    assert "ahead" in caught.value.problems[0][1]
    assert [r.event_id for r in store.for_customer("C1", None)] == ["past"]
    assert store.for_customer("C9", None) == []
    store.close()


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


# Defect 12: the earliest-payee index grew without bound.
def test_in_memory_payee_index_is_bounded_by_count() -> None:
    store = InMemoryHistoryStore(dt.timedelta(hours=26), max_payees=100)
    start = at("2025-03-03 09:00")
    store.record(rec("regular", start, payee="RENT"))
    for i in range(1000):
        store.record(rec(f"e{i}", start + dt.timedelta(seconds=i + 1), payee=f"ONE-OFF-{i}"))
        if i % 50 == 0:  # a payee in use stays remembered
            store.record(
                rec(f"r{i}", start + dt.timedelta(seconds=i + 1, microseconds=1), payee="RENT")
            )
    assert len(store._payees) <= 100
    assert store.earliest_with_counterparty("C1", "ONE-OFF-0") == []  # forgotten: looks new
    assert store.earliest_with_counterparty("C1", "ONE-OFF-999") != []
    assert store.earliest_with_counterparty("C1", "RENT")[0] == (start, "regular")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_payees_not_seen_for_the_horizon_are_forgotten(kind: str, tmp_path: Path) -> None:
    horizon = dt.timedelta(days=30)
    store: InMemoryHistoryStore | SQLiteHistoryStore = (
        InMemoryHistoryStore(dt.timedelta(hours=26), payee_horizon=horizon)
        if kind == "memory"
        else SQLiteHistoryStore(tmp_path / "h.db", dt.timedelta(hours=26), payee_horizon=horizon)
    )
    start = at("2025-01-02 09:00")
    store.record(rec("once", start, payee="ONCE"))
    store.record(rec("often-0", start, payee="OFTEN"))
    for day in range(1, 45):
        store.record(rec(f"often-{day}", start + dt.timedelta(days=day), payee="OFTEN"))
    assert store.earliest_with_counterparty("C1", "ONCE") == []
    assert store.earliest_with_counterparty("C1", "OFTEN")[0] == (start, "often-0")
    if isinstance(store, SQLiteHistoryStore):
        assert store._conn is not None
        rows = store._conn.execute("SELECT COUNT(*) FROM counterparty_earliest").fetchone()[0]
        assert rows == 2  # OFTEN's two earliest; ONCE is gone from disk too
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
