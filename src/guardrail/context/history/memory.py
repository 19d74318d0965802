"""History in process memory: sorted series per customer, account, branch and payee."""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from heapq import heappop, heappush

from guardrail.context.history.records import HistoryRecord, plausible_micros, utc_micros
from guardrail.context.history.retention import (
    DEFAULT_MAX_PAYEES,
    DEFAULT_PAYEE_HORIZON,
    RetentionClock,
    micros_or_none,
)


def _event_id(rec: HistoryRecord) -> str:
    return rec.event_id


class _Series:
    """Records of one customer or account, sorted by (instant, event_id)."""

    __slots__ = ("keys", "records")

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.records: list[HistoryRecord] = []

    def _position(self, key: int, event_id: str) -> int:
        # Among records sharing the instant, binary search on event_id: a linear scan there
        # made many records with one timestamp quadratic.
        keys = self.keys
        lo, hi = bisect_left(keys, key), bisect_right(keys, key)
        return bisect_left(self.records, event_id, lo, hi, key=_event_id)

    def insert(self, key: int, rec: HistoryRecord) -> None:
        keys = self.keys
        if not keys or key > keys[-1]:  # the usual case: history arrives in time order
            keys.append(key)
            self.records.append(rec)
            return
        index = self._position(key, rec.event_id)
        keys.insert(index, key)
        self.records.insert(index, rec)

    def remove(self, key: int, event_id: str) -> None:
        index = self._position(key, event_id)
        del self.keys[index]
        del self.records[index]

    def since(self, key: int | None) -> list[HistoryRecord]:
        if key is None:
            return list(self.records)
        return self.records[bisect_left(self.keys, key) :]

    def bounds(self, first: int | None, last: int) -> tuple[int, int]:
        """The slice of the records from instant ``first`` (None: the oldest) to ``last``,
        both included."""
        keys = self.keys
        if not keys:
            return 0, 0
        start = 0 if first is None else bisect_left(keys, first)
        end = len(keys) if keys[-1] <= last else bisect_right(keys, last, start)
        return start, end


class _PayeeSeen:
    """When a customer paid one counterparty: the two earliest records, and the latest instant."""

    __slots__ = ("earliest", "last")

    def __init__(self, last: int) -> None:
        self.earliest: list[tuple[int, str, datetime]] = []
        self.last = last


class InMemoryHistoryStore:
    """History in process memory; with ``retention``, memory stays bounded.

    When retention is set, records older than (clock − retention) are evicted as new records
    arrive, and a record already older than that is not stored at all. The clock follows the
    recorded event times but not an outlier among them (see ``RetentionClock``), and
    timestamps in the future (beyond ``MAX_CLOCK_SKEW`` of the wall clock) are refused.

    The earliest-payee index outlives retention, but forgets a (customer, counterparty) pair
    not seen for ``payee_horizon`` and, beyond ``max_payees`` pairs, the least recently seen:
    forgetting only ever makes a payee look new, which raises suspicion, never lowers it.
    """

    def __init__(
        self,
        retention: timedelta | None = None,
        *,
        payee_horizon: timedelta | None = DEFAULT_PAYEE_HORIZON,
        max_payees: int | None = DEFAULT_MAX_PAYEES,
    ) -> None:
        self._retention_us = micros_or_none(retention, "retention")
        self._payee_horizon_us = micros_or_none(payee_horizon, "payee_horizon")
        if max_payees is not None and max_payees < 1:
            raise ValueError("max_payees must be at least 1")
        self._max_payees = max_payees
        self._lock = threading.Lock()
        self._by_id: dict[str, tuple[int, HistoryRecord]] = {}
        self._by_customer: dict[str, _Series] = {}
        self._by_account: dict[str, _Series] = {}
        self._by_branch: dict[str, _Series] = {}
        self._by_payee: dict[str, _Series] = {}
        # (customer, counterparty) -> when seen, least recently seen first.
        self._payees: OrderedDict[tuple[str, str], _PayeeSeen] = OrderedDict()
        # Oldest-first heap of (instant, event_id) for eviction; kept only with a retention.
        self._ages: list[tuple[int, str]] = []
        self._clock = RetentionClock()

    def record(self, rec: HistoryRecord) -> None:
        key = plausible_micros(rec)
        with self._lock:
            if rec.event_id in self._by_id:
                return
            now = self._clock.advance(key)
            self._note_counterparty(key, rec, now)
            if self._retention_us is not None:
                cutoff = now - self._retention_us
                if key < cutoff:
                    return
            self._insert(key, rec)
            if self._retention_us is not None:
                heappush(self._ages, (key, rec.event_id))
                self._evict_locked(cutoff)

    def record_many(self, recs: Iterable[HistoryRecord]) -> None:
        """Record several records (bulk load)."""
        for rec in recs:
            self.record(rec)

    def _note_counterparty(self, key: int, rec: HistoryRecord, now: int) -> None:
        payees = self._payees
        if rec.counterparty_account is not None:
            pair = (rec.customer_id, rec.counterparty_account)
            seen = payees.get(pair)
            if seen is None:
                seen = payees[pair] = _PayeeSeen(key)
            else:
                payees.move_to_end(pair)
                seen.last = max(seen.last, key)
            entry = (key, rec.event_id, rec.timestamp)
            earliest = seen.earliest
            if entry not in earliest:
                earliest.append(entry)
                earliest.sort()
                del earliest[2:]
        if self._max_payees is not None:
            while len(payees) > self._max_payees:
                payees.popitem(last=False)
        if self._payee_horizon_us is not None:
            forget_before = now - self._payee_horizon_us
            while payees:
                oldest = next(iter(payees.values()))
                if oldest.last >= forget_before:
                    break
                payees.popitem(last=False)

    def _insert(self, key: int, rec: HistoryRecord) -> None:
        self._by_id[rec.event_id] = (key, rec)
        series = self._by_customer.get(rec.customer_id)
        if series is None:
            series = self._by_customer[rec.customer_id] = _Series()
        series.insert(key, rec)
        for index, name in (
            (self._by_account, rec.account_id),
            (self._by_branch, rec.branch_id),
            (self._by_payee, rec.counterparty_account),
        ):
            if name is not None:
                series = index.get(name)
                if series is None:
                    series = index[name] = _Series()
                series.insert(key, rec)

    def _remove(self, key: int, rec: HistoryRecord) -> None:
        del self._by_id[rec.event_id]
        self._drop_from(self._by_customer, rec.customer_id, key, rec.event_id)
        for index, name in (
            (self._by_account, rec.account_id),
            (self._by_branch, rec.branch_id),
            (self._by_payee, rec.counterparty_account),
        ):
            if name is not None:
                self._drop_from(index, name, key, rec.event_id)

    @staticmethod
    def _drop_from(index: dict[str, _Series], name: str, key: int, event_id: str) -> None:
        series = index[name]
        series.remove(key, event_id)
        if not series.keys:
            del index[name]

    def _evict_locked(self, cutoff: int) -> int:
        evicted = 0
        ages = self._ages
        while ages and ages[0][0] < cutoff:
            _, event_id = heappop(ages)
            entry = self._by_id.get(event_id)
            if entry is not None:  # may already be gone through evict_before
                self._remove(*entry)
                evicted += 1
        return evicted

    def for_customer(self, customer_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        key = None if since is None else utc_micros(since)
        with self._lock:
            series = self._by_customer.get(customer_id)
            return [] if series is None else series.since(key)

    def for_account(self, account_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        key = None if since is None else utc_micros(since)
        with self._lock:
            series = self._by_account.get(account_id)
            return [] if series is None else series.since(key)

    def for_branch(self, branch_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        key = None if since is None else utc_micros(since)
        with self._lock:
            series = self._by_branch.get(branch_id)
            return [] if series is None else series.since(key)

    def for_counterparty(
        self, counterparty_account: str, since: datetime | None
    ) -> Sequence[HistoryRecord]:
        key = None if since is None else utc_micros(since)
        with self._lock:
            series = self._by_payee.get(counterparty_account)
            return [] if series is None else series.since(key)

    # Reads by integer instant (microseconds since the epoch, UTC), for the windows' hot path:
    # the records from ``since_us`` (None: the oldest) to ``until_us``, both included.

    def customer_between(
        self, customer_id: str, since_us: int | None, until_us: int
    ) -> list[HistoryRecord]:
        """The customer's records with an instant in [``since_us``, ``until_us``]."""
        return self._between(self._by_customer, customer_id, since_us, until_us)

    def account_between(
        self, account_id: str, since_us: int | None, until_us: int
    ) -> list[HistoryRecord]:
        """The account's records with an instant in [``since_us``, ``until_us``]."""
        return self._between(self._by_account, account_id, since_us, until_us)

    def _between(
        self, index: dict[str, _Series], name: str, since_us: int | None, until_us: int
    ) -> list[HistoryRecord]:
        if name not in index:  # no record yet: no lock to take
            return []
        with self._lock:
            series = index.get(name)
            if series is None:
                return []
            start, end = series.bounds(since_us, until_us)
            return series.records[start:end]

    def customer_payee_between(
        self, customer_id: str, counterparty_account: str, since_us: int | None, until_us: int
    ) -> list[HistoryRecord]:
        """The customer's records with that counterparty account with an instant in
        [``since_us``, ``until_us``], oldest first: read from the shorter of the customer's
        series and the payee account's there (a customer with many payees reads only this
        one's, a payee paid by many customers only this customer's)."""
        if customer_id not in self._by_customer or counterparty_account not in self._by_payee:
            return []
        with self._lock:
            by_customer = self._by_customer.get(customer_id)
            by_payee = self._by_payee.get(counterparty_account)
            if by_customer is None or by_payee is None:
                return []
            start, end = by_customer.bounds(since_us, until_us)
            start_payee, end_payee = by_payee.bounds(since_us, until_us)
            if end - start <= end_payee - start_payee:
                return [
                    rec
                    for rec in by_customer.records[start:end]
                    if rec.counterparty_account == counterparty_account
                ]
            return [
                rec
                for rec in by_payee.records[start_payee:end_payee]
                if rec.customer_id == customer_id
            ]

    def earliest_with_counterparty(
        self, customer_id: str, counterparty_account: str
    ) -> Sequence[tuple[datetime, str]]:
        with self._lock:
            seen = self._payees.get((customer_id, counterparty_account))
            if seen is None:
                return []
            return [(timestamp, event_id) for _, event_id, timestamp in seen.earliest]

    def evict_before(self, cutoff: datetime) -> int:
        limit = utc_micros(cutoff)
        with self._lock:
            if self._retention_us is not None:
                return self._evict_locked(limit)
            old = [entry for entry in self._by_id.values() if entry[0] < limit]
            for entry in old:
                self._remove(*entry)
            return len(old)

    def close(self) -> None:
        """Nothing to release; the records stay readable."""

    def __len__(self) -> int:
        return len(self._by_id)
