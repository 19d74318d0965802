"""Executed-transaction history behind one interface: in memory (default) or SQLite (persistent).

Only executed transactions belong here: the caller records an event after the counter has
actually paid out or transferred, never a refused one. ``records`` is the record and its row
form, ``protocol`` what a store offers, ``retention`` how long history is kept, ``memory`` and
``sqlite`` the two embedded stores (``sqlite_migrations`` the file's schema); the PostgreSQL
store lives in ``guardrail.stores``.
"""

from guardrail.context.history.memory import InMemoryHistoryStore
from guardrail.context.history.protocol import CrossCustomerHistory, HistoryStore
from guardrail.context.history.records import (
    HistoryRecord,
    plausible_micros,
    record_from_row,
    record_row,
    utc_micros,
)
from guardrail.context.history.retention import (
    DEFAULT_MAX_PAYEES,
    DEFAULT_PAYEE_HORIZON,
    retention_for,
)
from guardrail.context.history.sqlite import SQLiteHistoryStore

__all__ = [
    "DEFAULT_MAX_PAYEES",
    "DEFAULT_PAYEE_HORIZON",
    "CrossCustomerHistory",
    "HistoryRecord",
    "HistoryStore",
    "InMemoryHistoryStore",
    "SQLiteHistoryStore",
    "plausible_micros",
    "record_from_row",
    "record_row",
    "retention_for",
    "utc_micros",
]
