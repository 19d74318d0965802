"""How much history to keep, and the clock retention is measured from."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from datetime import timedelta

from guardrail.context.history.records import MICROSECOND
from guardrail.lang.declarations import WindowSpec

# The longest derived feature looks back 24 hours (or one local day, 25 hours across a DST
# change); the margin also absorbs small clock skew between tellers' terminals.
_MIN_LOOKBACK = timedelta(hours=24)
_RETENTION_MARGIN = timedelta(hours=2)
# The margin covers MAX_CLOCK_SKEW (the furthest a record may be dated ahead and so push the
# retention clock) plus the extra hour of a local day across DST.

# How long a (customer, counterparty) pair is remembered after it was last seen, and how many
# pairs an in-memory store keeps at most (about 500 bytes each).
DEFAULT_PAYEE_HORIZON = timedelta(days=400)
DEFAULT_MAX_PAYEES = 1_000_000


def micros_or_none(span: timedelta | None, what: str) -> int | None:
    """``span`` in microseconds (None stays None); ValueError naming ``what`` unless positive."""
    if span is None:
        return None
    if span <= timedelta(0):
        raise ValueError(f"{what} must be positive")
    return span // MICROSECOND


def retention_for(windows: Sequence[WindowSpec]) -> timedelta | None:
    """How much history the given windows (plus the built-in 24h features) can ever need.

    None means unbounded (a ``since_account_opened`` window); otherwise the longest lookback,
    at least 24 hours, plus a margin for a local day across DST and for clock skew.
    """
    longest = _MIN_LOOKBACK
    for spec in windows:
        hours = spec.lookback_hours
        if hours is None:
            return None
        longest = max(longest, timedelta(hours=hours))
    return longest + _RETENTION_MARGIN


class RetentionClock:
    """The instant retention and payee forgetting are measured from: the median of the last
    few recorded timestamps, never moving back. One record dated far ahead (a terminal with a
    wrong clock, a crafted event) cannot move it and so cannot evict everyone's recent history;
    it takes most of the last ``SPAN`` records to move it."""

    SPAN = 9
    __slots__ = ("now", "recent")

    def __init__(self, recent: Iterable[int] = ()) -> None:
        self.recent: deque[int] = deque(maxlen=self.SPAN)
        self.now: int | None = None
        for key in recent:
            self.advance(key)

    def advance(self, key: int) -> int:
        """Note one recorded instant; returns the clock."""
        self.recent.append(key)
        ordered = sorted(self.recent)
        median = ordered[(len(ordered) - 1) // 2]  # the lower median: an outlier never wins
        if self.now is None or median > self.now:
            self.now = median
        return self.now

    def copy(self) -> RetentionClock:
        clone = RetentionClock()
        clone.recent.extend(self.recent)
        clone.now = self.now
        return clone
