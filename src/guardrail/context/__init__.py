"""Context for rules: executed history, windowed aggregates, watchlists, lexicons, normalisation.

Building blocks the ``Guard`` wires together; each is safe to share across teller threads.
"""

from guardrail.context.history import (
    HistoryRecord,
    HistoryStore,
    InMemoryHistoryStore,
    SQLiteHistoryStore,
    retention_for,
)
from guardrail.context.lexicon import LexiconHit, LexiconMatcher
from guardrail.context.normalise import normalise
from guardrail.context.watchlist import (
    Watchlist,
    WatchlistError,
    WatchlistRegistry,
    load_watchlist,
    normalise_value,
)
from guardrail.context.windows import (
    compute_window,
    derived_history_features,
    local_time,
    static_derived_features,
)

__all__ = [
    "HistoryRecord",
    "HistoryStore",
    "InMemoryHistoryStore",
    "LexiconHit",
    "LexiconMatcher",
    "SQLiteHistoryStore",
    "Watchlist",
    "WatchlistError",
    "WatchlistRegistry",
    "compute_window",
    "derived_history_features",
    "load_watchlist",
    "local_time",
    "normalise",
    "normalise_value",
    "retention_for",
    "static_derived_features",
]
