"""History stores: same behaviour in memory and in SQLite; idempotence, eviction, reopen."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from context_factory import at, make_event, window

from guardrail.context import (
    HistoryRecord,
    HistoryStore,
    InMemoryHistoryStore,
    SQLiteHistoryStore,
    retention_for,
)
from guardrail.context.history import utc_micros
from guardrail.model.event import Channel, Direction, TransactionKind


def rec(
    event_id: str,
    when: dt.datetime,
    *,
    customer: str = "C1",
    account: str | None = "A1",
    amount_fen: int = 100,
    payee: str | None = None,
) -> HistoryRecord:
    return HistoryRecord(
        event_id=event_id,
        customer_id=customer,
        account_id=account,
        kind=TransactionKind.CASH_WITHDRAWAL,
        direction=Direction.OUT,
        channel=Channel.COUNTER,
        amount_fen=amount_fen,
        timestamp=when,
        counterparty_account=payee,
    )


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryStore]:
    made: HistoryStore = (
        InMemoryHistoryStore()
        if request.param == "memory"
        else SQLiteHistoryStore(tmp_path / "history.db")
    )
    yield made
    made.close()


def test_from_event() -> None:
    event = make_event("e1", at("2025-03-01 10:00"), "1234.56", payee="6222333344445555")
    record = HistoryRecord.from_event(event)
    assert record.amount_fen == 123456
    assert record.direction is Direction.OUT
    assert record.account_id == "6222000011112222"
    assert record.counterparty_account == "6222333344445555"
    assert record.timestamp == event.timestamp


def test_both_stores_satisfy_the_protocol(store: HistoryStore) -> None:
    assert isinstance(store, HistoryStore)


def test_record_is_idempotent_and_queries_are_sorted(store: HistoryStore) -> None:
    base = at("2025-03-01 09:00")
    for i in [3, 1, 2, 1, 3]:
        store.record(rec(f"e{i}", base + dt.timedelta(hours=i)))
    store.record(rec("x", base, customer="C2", account="A2"))
    assert len(store) == 4
    assert [r.event_id for r in store.for_customer("C1", None)] == ["e1", "e2", "e3"]
    assert [r.event_id for r in store.for_account("A1", base + dt.timedelta(hours=2))] == [
        "e2",
        "e3",
    ]
    assert store.for_customer("nobody", None) == []
    assert [r.event_id for r in store.for_account("A2", None)] == ["x"]


def test_since_is_inclusive_and_offsets_compare_as_instants(store: HistoryStore) -> None:
    utc_noon = dt.datetime(2025, 3, 1, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai
    store.record(rec("e1", utc_noon))
    assert [r.event_id for r in store.for_customer("C1", at("2025-03-01 12:00"))] == ["e1"]
    assert store.for_customer("C1", at("2025-03-01 12:00:00.000001")) == []


def test_ties_ordered_by_event_id(store: HistoryStore) -> None:
    when = at("2025-03-01 09:00")
    for event_id in ["b", "c", "a"]:
        store.record(rec(event_id, when))
    assert [r.event_id for r in store.for_customer("C1", None)] == ["a", "b", "c"]


def test_evict_before(store: HistoryStore) -> None:
    base = at("2025-03-01 00:00")
    for i in range(10):
        store.record(rec(f"e{i}", base + dt.timedelta(hours=i)))
    assert store.evict_before(base + dt.timedelta(hours=4)) == 4
    assert len(store) == 6
    assert store.for_customer("C1", None)[0].event_id == "e4"
    assert store.for_account("A1", None)[0].event_id == "e4"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_retention_bounds_the_store(kind: str, tmp_path: Path) -> None:
    retention = dt.timedelta(hours=26)
    store: InMemoryHistoryStore | SQLiteHistoryStore = (
        InMemoryHistoryStore(retention)
        if kind == "memory"
        else SQLiteHistoryStore(tmp_path / "h.db", retention)
    )
    rng = random.Random(7)
    base = at("2025-01-01 00:00")
    newest = base
    # The retention clock is the median of the last nine record times (so that one outlier
    # cannot move it): it lags the newest by at most the spread of nine records here.
    lag = dt.timedelta(minutes=80 + 180)
    for i in range(3000):
        # mostly forward in time, with some late arrivals up to 3 hours out of order
        when = base + dt.timedelta(minutes=10 * i - rng.randrange(0, 180))
        newest = max(newest, when)
        store.record(rec(f"e{i}", when, customer=f"C{i % 50}", account=f"A{i % 70}"))
        if i % 500 == 0:
            cutoff = newest - retention - lag
            for c in range(50):
                assert all(r.timestamp >= cutoff for r in store.for_customer(f"C{c}", None))
    cutoff = newest - retention - lag
    kept = [r for c in range(50) for r in store.for_customer(f"C{c}", None)]
    assert kept and all(r.timestamp >= cutoff for r in kept)
    # one record per 10 minutes, plus late ones and the clock's lag
    assert len(store) == len(kept) <= 26 * 6 + 18 + 26 + 1
    by_account = [r for a in range(70) for r in store.for_account(f"A{a}", None)]
    assert sorted(r.event_id for r in by_account) == sorted(r.event_id for r in kept)
    store.close()


def test_retention_rejects_non_positive() -> None:
    with pytest.raises(ValueError):
        InMemoryHistoryStore(dt.timedelta(0))


def test_sqlite_reopen_returns_the_same_records(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    first = SQLiteHistoryStore(path)
    tz_pst = dt.timezone(dt.timedelta(hours=-8))
    originals = [
        rec("e1", at("2025-03-01 09:00:00.123456"), payee="P1"),
        rec("e2", dt.datetime(2025, 3, 1, 2, 0, tzinfo=tz_pst), account=None),
        rec("e3", at("2025-03-02 09:00"), amount_fen=5_000_000_00),
    ]
    for original in originals:
        first.record(original)
    first.close()
    with pytest.raises(RuntimeError, match="closed"):
        first.for_customer("C1", None)

    second = SQLiteHistoryStore(path)
    again = list(second.for_customer("C1", None))
    assert again == sorted(originals, key=lambda r: r.timestamp)
    assert [r.timestamp.utcoffset() for r in again] == [
        r.timestamp.utcoffset() for r in sorted(originals, key=lambda r: r.timestamp)
    ]
    second.record(originals[0])  # still idempotent after reopening
    assert len(second) == 3
    second.close()


def test_sqlite_record_many_and_wal(tmp_path: Path) -> None:
    with SQLiteHistoryStore(tmp_path / "h.db") as store:
        store.record_many(
            rec(f"e{i}", at("2025-03-01 09:00") + dt.timedelta(seconds=i)) for i in range(100)
        )
        store.record_many([])
        assert len(store) == 100
    assert (tmp_path / "h.db").exists()


def test_concurrent_writers_and_readers(store: HistoryStore) -> None:
    base = at("2025-03-01 00:00")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(200):
                store.record(rec(f"w{n}-{i}", base + dt.timedelta(seconds=i), customer=f"C{n}"))
                store.for_customer(f"C{n}", base)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store) == 1200
    assert all(len(store.for_customer(f"C{n}", None)) == 200 for n in range(6))


def test_retention_for() -> None:
    margin = dt.timedelta(hours=2)
    assert retention_for([]) == dt.timedelta(hours=24) + margin
    same_day = window(aggregate="sum", span="same_day")
    assert retention_for([same_day]) == dt.timedelta(hours=24) + margin
    three_hours = window(aggregate="count", measure="event", span="hours", length=3)
    assert retention_for([three_hours]) == dt.timedelta(hours=24) + margin
    thirty_days = window(aggregate="sum", span="days", length=30)
    assert retention_for([same_day, thirty_days]) == dt.timedelta(days=30) + margin
    forever = window(aggregate="sum", span="since_account_opened")
    assert retention_for([thirty_days, forever]) is None


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_earliest_counterparty_survives_eviction(kind: str, tmp_path: Path) -> None:
    retention = dt.timedelta(hours=26)
    store: InMemoryHistoryStore | SQLiteHistoryStore = (
        InMemoryHistoryStore(retention)
        if kind == "memory"
        else SQLiteHistoryStore(tmp_path / "h.db", retention)
    )
    base = at("2025-01-01 09:00")
    store.record(rec("late", base + dt.timedelta(days=3), payee="P1"))
    store.record(rec("first", base, payee="P1"))  # too old to keep, still proves the payee
    store.record(rec("second", base + dt.timedelta(days=1), payee="P1"))
    store.record(rec("other", base + dt.timedelta(days=40), payee="P2"))
    # "first" and "second" were already older than the clock (day 3) minus retention; "other",
    # one record far ahead, does not move the clock, so "late" stays.
    assert [r.event_id for r in store.for_customer("C1", None)] == ["late", "other"]
    assert store.earliest_with_counterparty("C1", "P1") == [
        (base, "first"),
        (base + dt.timedelta(days=1), "second"),
    ]
    store.record(rec("first", base, payee="P1"))  # idempotent
    assert len(store.earliest_with_counterparty("C1", "P1")) == 2
    assert store.earliest_with_counterparty("C1", "P3") == []
    assert store.earliest_with_counterparty("C2", "P1") == []
    store.close()


def _payee_scan(
    store: InMemoryHistoryStore, customer: str, payee: str, since: dt.datetime | None
) -> list[HistoryRecord]:
    return [r for r in store.for_customer(customer, since) if r.counterparty_account == payee]


def test_customer_payee_read_equals_a_scan_of_the_customer_s_records() -> None:
    """The in-memory read by customer and payee (from the shorter of the two series) gives
    exactly the customer's records filtered by payee, in order: after appends, out-of-order
    inserts, ties and evictions, whichever series is shorter."""
    rng = random.Random(7)
    store = InMemoryHistoryStore()
    base = at("2025-03-01 00:00")
    customers = [f"C{i}" for i in range(6)]
    payees = [f"P{i}" for i in range(4)]
    instants = [base + dt.timedelta(minutes=rng.randrange(0, 7 * 24 * 60)) for _ in range(40)]
    for index in range(600):
        when = base + dt.timedelta(minutes=index * 17) if index % 3 else rng.choice(instants)
        store.record(
            rec(
                f"e{index:04d}",
                when,
                customer=rng.choice(customers[:2] if index % 5 else customers),
                payee=rng.choice([*payees, None]),
            )
        )
        if index % 50 == 49:
            store.evict_before(base + dt.timedelta(minutes=index * 2))
            for customer in customers:
                for payee in [*payees, "nobody"]:
                    for since in (None, base, base + dt.timedelta(days=rng.randrange(8))):
                        key = None if since is None else utc_micros(since)
                        until = base + dt.timedelta(days=rng.randrange(9))
                        assert store.customer_payee_between(
                            customer, payee, key, utc_micros(until)
                        ) == [
                            r
                            for r in _payee_scan(store, customer, payee, since)
                            if r.timestamp <= until
                        ]


def test_reads_by_instant_equal_the_reads_by_datetime() -> None:
    store = InMemoryHistoryStore()
    for index in range(50):
        # some instants twice: the bounds include every record at the first and last instant
        when = at("2025-03-01 00:00") + dt.timedelta(minutes=37 * (index // 2))
        store.record(rec(f"e{index:02d}", when, customer=f"C{index % 3}", account=f"A{index % 2}"))
    instants = [at("2025-03-01 00:00") + dt.timedelta(minutes=37 * n) for n in (0, 3, 11, 24)]
    for since in (None, at("2025-03-01 05:00"), *instants, at("2025-04-01 00:00")):
        key = None if since is None else utc_micros(since)
        for until in (*instants, at("2025-02-01 00:00"), at("2025-04-01 00:00")):
            last = utc_micros(until)
            for name in ("C0", "C1", "C9"):
                expected = [r for r in store.for_customer(name, since) if r.timestamp <= until]
                assert store.customer_between(name, key, last) == expected
            for name in ("A0", "A1", "A9"):
                expected = [r for r in store.for_account(name, since) if r.timestamp <= until]
                assert store.account_between(name, key, last) == expected


def test_utc_micros_is_exact() -> None:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for when in (
        epoch,
        dt.datetime(2025, 3, 1, 7, 12, 48, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ):
        assert utc_micros(when) == (when - epoch) // dt.timedelta(microseconds=1)
