"""Windows keyed by branch and by payee read every customer's history (memory and SQLite)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from guardrail.context.history import (
    HistoryRecord,
    HistoryStore,
    InMemoryHistoryStore,
    SQLiteHistoryStore,
)
from guardrail.context.windows import WindowStoreError, compute_window
from guardrail.guard import parse_event
from guardrail.lang.declarations import WindowSpec
from support import example_event_data

T0 = dt.datetime(2025, 4, 3, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _event(i: int, minutes: int, **changes: Any) -> Any:
    data = example_event_data()
    data.update(
        event_id=f"e{i}",
        timestamp=(T0 + dt.timedelta(minutes=minutes)).isoformat(),
        customer={"id": f"C{i}", "birth_date": "1950-01-01"},
        purpose={"code": "investment", "text": "项目"},
        counterparty={"account": "6214000000990001", "same_name": False},
        kind="transfer",
    )
    data.update(changes)
    return parse_event(data)


BRANCH_SPEC = WindowSpec.model_validate_json(
    json.dumps(
        {
            "name": "elderly_same_purpose",
            "aggregate": "count_distinct",
            "measure": "customer",
            "key": "branch",
            "span": "hours",
            "length": 1,
            "same_purpose": True,
            "min_customer_age": 60,
        }
    )
)
PAYEE_SPEC = WindowSpec.model_validate_json(
    json.dumps(
        {
            "name": "payee_customers",
            "aggregate": "count_distinct",
            "measure": "customer",
            "key": "payee",
            "span": "hours",
            "length": 72,
        }
    )
)
PAYEE_SUM = WindowSpec.model_validate_json(
    json.dumps(
        {"name": "payee_sum", "aggregate": "sum", "key": "payee", "span": "days", "length": 3}
    )
)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield InMemoryHistoryStore()
        return
    if request.param == "postgresql":
        from guardrail.stores import open_history_store

        pg_store = open_history_store(request.getfixturevalue("postgres_db_url"))
        yield pg_store
        pg_store.close()
        return
    sqlite_store = SQLiteHistoryStore(tmp_path / "history.sqlite")
    yield sqlite_store
    sqlite_store.close()


def _record(store: HistoryStore, *events: Any) -> None:
    for event in events:
        store.record(HistoryRecord.from_event(event))


def test_branch_window_counts_distinct_elderly_customers_with_the_same_purpose(
    store: HistoryStore,
) -> None:
    young = _event(9, 10, customer={"id": "C9", "birth_date": "1990-01-01"})
    other_purpose = _event(8, 12, purpose={"code": "medical"})
    other_branch = _event(7, 14, branch={"id": "OTHER", "region": "CN-SH"})
    too_early = _event(6, -120)
    _record(store, _event(1, 5), _event(1, 6, event_id="e1b"), _event(2, 20), young, other_purpose)
    _record(store, other_branch, too_early)
    current = _event(3, 40)
    # C1 (twice), C2 and the current C3; not the young one, other purpose, branch, or too early
    assert compute_window(BRANCH_SPEC, current, store) == 3
    no_purpose = current.model_copy(update={"purpose": None})
    assert compute_window(BRANCH_SPEC, no_purpose, store) == 0


def test_payee_window_counts_customers_paying_the_same_account(store: HistoryStore) -> None:
    _record(store, _event(1, 0), _event(1, 30, event_id="e1b"), _event(2, 60))
    _record(store, _event(4, 70, counterparty={"account": "6214000000990002"}))
    current = _event(3, 120)
    assert compute_window(PAYEE_SPEC, current, store) == 3
    assert compute_window(PAYEE_SUM, current, store) == 4 * 80000_00
    no_payee = current.model_copy(update={"counterparty": None})
    assert compute_window(PAYEE_SPEC, no_payee, store) == 0


def test_a_store_without_cross_customer_reads_fails_loudly() -> None:
    class CustomerOnly:
        def for_customer(self, customer_id: str, since: Any) -> list[HistoryRecord]:
            return []

    with pytest.raises(WindowStoreError) as raised:
        compute_window(PAYEE_SPEC, _event(1, 0), CustomerOnly())  # type: ignore[arg-type]
    assert "payee" in str(raised.value) and "CustomerOnly" in str(raised.value)


def test_an_old_sqlite_file_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE history (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL,"
        " account_id TEXT, kind TEXT NOT NULL, direction TEXT NOT NULL, channel TEXT NOT NULL,"
        " amount_fen INTEGER NOT NULL, ts_us INTEGER NOT NULL, ts_iso TEXT NOT NULL,"
        " counterparty_account TEXT, currency TEXT NOT NULL DEFAULT 'CNY') WITHOUT ROWID"
    )
    conn.execute(
        "INSERT INTO history VALUES ('old', 'C1', NULL, 'transfer', 'out', 'counter', 100,"
        " 1743642000000000, '2025-04-03T09:00:00+08:00', '6214000000990001', 'CNY')"
    )
    conn.commit()
    conn.close()
    store = SQLiteHistoryStore(path)
    try:
        (old,) = store.for_customer("C1", None)
        assert old.branch_id is None and old.purpose is None and old.customer_age is None
        assert [r.event_id for r in store.for_counterparty("6214000000990001", None)] == ["old"]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"measure": "customer", "key": "customer"}, "distinct customers need key"),
        ({"aggregate": "count", "measure": "customer", "key": "branch"}, "count_distinct"),
    ],
)
def test_inconsistent_cross_customer_windows_are_refused(
    spec: dict[str, Any], message: str
) -> None:
    data = {"name": "w", "aggregate": "count_distinct", "span": "same_day", **spec}
    with pytest.raises(ValueError, match=message):
        WindowSpec.model_validate_json(json.dumps(data))


def test_a_windowed_store_hands_cross_customer_windows_back_to_records(
    store: HistoryStore,
) -> None:
    from guardrail.context.windows import history_values

    _record(store, _event(1, 0), _event(2, 30))
    current = _event(3, 60)
    values = history_values(current, {"p": PAYEE_SPEC, "b": BRANCH_SPEC}, store, derived=False)
    assert values == {"p": 3, "b": 3}
