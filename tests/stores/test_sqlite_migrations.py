"""SQLite stores keep a schema version too: old files are upgraded, newer ones refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from guardrail.audit.sqlite_store import SQLiteStore
from guardrail.context.sqlite_schema import SQLiteSchemaTooNew
from guardrail.errors import StoreError
from guardrail.stores import open_history_store, open_session_store


def _bump(path: Path, component: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE guardrail_schema SET version = 42 WHERE component = ?", (component,))


@pytest.mark.parametrize("component", ["history", "sessions", "audit"])
def test_a_newer_sqlite_schema_is_refused(tmp_path: Path, component: str) -> None:
    path = tmp_path / f"{component}.db"
    url = f"sqlite:///{path}"
    openers = {
        "history": lambda: open_history_store(url),
        "sessions": lambda: open_session_store(url),
        "audit": lambda: SQLiteStore(path),
    }
    openers[component]().close()
    _bump(path, component)
    with pytest.raises(StoreError, match=f"{component} schema is at version 42"):
        openers[component]()
    if component == "audit":  # read-only opens (verify, report) refuse too, without writing
        with pytest.raises(SQLiteSchemaTooNew):
            SQLiteStore(path, create=False)


def test_a_history_file_from_before_versions_and_currencies_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE history (event_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL,"
            " account_id TEXT, kind TEXT NOT NULL, direction TEXT NOT NULL, channel TEXT NOT NULL,"
            " amount_fen INTEGER NOT NULL, ts_us INTEGER NOT NULL, ts_iso TEXT NOT NULL,"
            " counterparty_account TEXT) WITHOUT ROWID"
        )
        conn.execute(
            "INSERT INTO history VALUES ('e1', 'C1', NULL, 'cash_withdrawal', 'out', 'counter',"
            " 100, 0, '1970-01-01T08:00:00+08:00', NULL)"
        )
    store = open_history_store(f"sqlite:///{path}")
    [record] = store.for_customer("C1", None)
    assert record.currency.value == "CNY"
    assert record.branch_id is None  # version 3: branch, purpose, age for cross-customer windows
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute(
            "SELECT version FROM guardrail_schema WHERE component = 'history'"
        ).fetchone() == (4,)  # 4: the payee last-seen table
