"""The SQLite history file's schema and its forward migrations (version table ``guardrail_schema``,
component ``history``). The first migration is idempotent, so files written before the version
table existed adopt it, and the later ones upgrade them."""

from __future__ import annotations

import sqlite3

from guardrail.context.sqlite_schema import Migration

_SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    event_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    account_id TEXT,
    kind TEXT NOT NULL,
    direction TEXT NOT NULL,
    channel TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    ts_us INTEGER NOT NULL,
    ts_iso TEXT NOT NULL,
    counterparty_account TEXT,
    currency TEXT NOT NULL DEFAULT 'CNY',
    branch_id TEXT,
    purpose TEXT,
    customer_age INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_customer_ts ON history (customer_id, ts_us);
CREATE INDEX IF NOT EXISTS history_account_ts ON history (account_id, ts_us);
CREATE INDEX IF NOT EXISTS history_ts ON history (ts_us);
CREATE TABLE IF NOT EXISTS counterparty_earliest (
    customer_id TEXT NOT NULL,
    counterparty_account TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    ts_iso TEXT NOT NULL,
    PRIMARY KEY (customer_id, counterparty_account, ts_us, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counterparty_last_seen (
    customer_id TEXT NOT NULL,
    counterparty_account TEXT NOT NULL,
    last_us INTEGER NOT NULL,
    PRIMARY KEY (customer_id, counterparty_account)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS counterparty_last_seen_us ON counterparty_last_seen (last_us);
"""


def _add_currency(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(history)")}
    if "currency" not in columns:  # a file written before amounts carried their currency
        conn.execute("ALTER TABLE history ADD COLUMN currency TEXT NOT NULL DEFAULT 'CNY'")


def _add_cross_customer_columns(conn: sqlite3.Connection) -> None:
    """Branch, purpose and age of each record, for windows keyed across customers."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(history)")}
    added = (("branch_id", "TEXT"), ("purpose", "TEXT"), ("customer_age", "INTEGER"))
    for column, sql_type in added:
        if column not in columns:
            conn.execute(f"ALTER TABLE history ADD COLUMN {column} {sql_type}")
    # one statement at a time: executescript would commit the migration's transaction
    conn.execute("CREATE INDEX IF NOT EXISTS history_branch_ts ON history (branch_id, ts_us)")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS history_payee_ts ON history (counterparty_account, ts_us)"
    )


# Files written before pairs were forgotten: every known pair counts as seen at its latest.
_BACKFILL_LAST_SEEN = (
    "INSERT OR IGNORE INTO counterparty_last_seen SELECT customer_id, counterparty_account,"
    " MAX(ts_us) FROM counterparty_earliest GROUP BY customer_id, counterparty_account"
)


def _add_payee_last_seen(conn: sqlite3.Connection) -> None:
    """When each payee was last seen, so pairs unused for the payee horizon can be forgotten;
    backfilled from the earliest-payee index of files written before it existed."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS counterparty_last_seen (customer_id TEXT NOT NULL,"
        " counterparty_account TEXT NOT NULL, last_us INTEGER NOT NULL,"
        " PRIMARY KEY (customer_id, counterparty_account)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS counterparty_last_seen_us ON counterparty_last_seen (last_us)"
    )
    conn.execute(_BACKFILL_LAST_SEEN)


MIGRATIONS: tuple[Migration, ...] = (
    _SCHEMA,
    _add_currency,
    _add_cross_customer_columns,
    _add_payee_last_seen,
)
