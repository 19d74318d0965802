"""Executed-transaction history behind one interface: in memory (default) or SQLite (persistent).

Only executed transactions belong here: the caller records an event after the counter has
actually paid out or transferred, never a refused one.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from heapq import heappop, heappush
from pathlib import Path
from typing import Protocol, runtime_checkable

from guardrail.context.sqlite_schema import Migration, migrate_sqlite
from guardrail.errors import EventError, StoreError
from guardrail.lang.declarations import WindowSpec
from guardrail.model.event import (
    MAX_CLOCK_SKEW,
    Channel,
    Direction,
    Event,
    TransactionKind,
    implausible_timestamp,
)
from guardrail.model.money import Currency

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

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


def utc_micros(ts: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch (UTC)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"history needs aware timestamps, got naive {ts.isoformat()}")
    return (ts - _EPOCH) // _MICROSECOND


def plausible_micros(rec: HistoryRecord) -> int:
    """``rec``'s instant in UTC microseconds; ``EventError`` if it is in the future or absurd.

    A record dated ahead would move the retention clock and evict everyone's recent history."""
    problem = implausible_timestamp(rec.timestamp)
    if problem is not None:
        raise EventError([("timestamp", f"{problem} (event {rec.event_id})")])
    return utc_micros(rec.timestamp)


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One executed transaction as the windows need it; amounts in integer fen."""

    event_id: str
    customer_id: str
    account_id: str | None
    kind: TransactionKind
    direction: Direction
    channel: Channel
    amount_fen: int
    timestamp: datetime
    counterparty_account: str | None
    currency: Currency = Currency.CNY  # money windows add up one currency only
    branch_id: str | None = None  # for windows keyed by branch (across customers)
    purpose: str | None = None  # purpose code, for "same purpose" windows
    customer_age: int | None = None  # whole years on the event's date, for age filters

    @classmethod
    def from_event(cls, event: Event) -> HistoryRecord:
        """The record of ``event`` once it has been executed."""
        account = event.account.id if event.account is not None else None
        payee = event.counterparty.account if event.counterparty is not None else None
        born = event.customer.birth_date
        on = event.timestamp.date()
        age = (
            None
            if born is None
            else on.year - born.year - ((on.month, on.day) < (born.month, born.day))
        )
        # Interned: a million records share a few thousand customer and account strings.
        return cls(
            event_id=event.event_id,
            customer_id=sys.intern(event.customer.id),
            account_id=None if account is None else sys.intern(account),
            kind=event.kind,
            direction=event.direction,
            channel=event.channel,
            amount_fen=event.amount.fen,
            timestamp=event.timestamp,
            counterparty_account=None if payee is None else sys.intern(payee),
            currency=event.amount.currency,
            branch_id=sys.intern(event.branch.id),
            purpose=None if event.purpose is None else event.purpose.code.value,
            customer_age=age,
        )


@runtime_checkable
class CrossCustomerHistory(Protocol):
    """History read across customers: by branch and by payee account (windows keyed so)."""

    def for_branch(self, branch_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        """Every customer's records at the branch with timestamp >= ``since``, oldest first."""
        ...

    def for_counterparty(
        self, counterparty_account: str, since: datetime | None
    ) -> Sequence[HistoryRecord]:
        """Every customer's records with that counterparty account, oldest first."""
        ...


@runtime_checkable
class HistoryStore(Protocol):
    """Executed history keyed by customer and by account, read as of any instant."""

    def record(self, rec: HistoryRecord) -> None:
        """Store ``rec``; recording the same event_id again changes nothing."""
        ...

    def for_customer(self, customer_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        """The customer's records with timestamp >= ``since`` (all if None), oldest first."""
        ...

    def for_account(self, account_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        """The account's records with timestamp >= ``since`` (all if None), oldest first."""
        ...

    def earliest_with_counterparty(
        self, customer_id: str, counterparty_account: str
    ) -> Sequence[tuple[datetime, str]]:
        """(timestamp, event_id) of the customer's two earliest records with that counterparty.

        Kept beyond retention and eviction, so "never seen before" means never; two entries
        are enough to answer "seen before this event, other than in this event itself".
        """
        ...

    def evict_before(self, cutoff: datetime) -> int:
        """Drop records older than ``cutoff``; returns how many were dropped."""
        ...

    def close(self) -> None:
        """Release resources; a persistent store flushes to disk."""
        ...

    def __len__(self) -> int: ...


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


class _RetentionClock:
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

    def copy(self) -> _RetentionClock:
        clone = _RetentionClock()
        clone.recent.extend(self.recent)
        clone.now = self.now
        return clone


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
    recorded event times but not an outlier among them (see ``_RetentionClock``), and
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
        if retention is not None and retention <= timedelta(0):
            raise ValueError("retention must be positive")
        if payee_horizon is not None and payee_horizon <= timedelta(0):
            raise ValueError("payee_horizon must be positive")
        if max_payees is not None and max_payees < 1:
            raise ValueError("max_payees must be at least 1")
        self._retention_us = None if retention is None else retention // _MICROSECOND
        self._payee_horizon_us = None if payee_horizon is None else payee_horizon // _MICROSECOND
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
        self._clock = _RetentionClock()

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


# Forward migrations (version table ``guardrail_schema``); the first is idempotent, so files
# written before the version table existed adopt it, and the later ones upgrade them.
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


_MIGRATIONS: tuple[Migration, ...] = (
    _SCHEMA,
    _add_currency,
    _add_cross_customer_columns,
    _add_payee_last_seen,
)

_COLUMNS = (
    "event_id, customer_id, account_id, kind, direction, channel, amount_fen, ts_iso, "
    "counterparty_account, currency, branch_id, purpose, customer_age"
)
_INSERT = (
    "INSERT OR IGNORE INTO history (event_id, customer_id, account_id, kind, direction, channel,"
    " amount_fen, ts_us, ts_iso, counterparty_account, currency, branch_id, purpose,"
    " customer_age) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_NOTE_COUNTERPARTY = "INSERT OR IGNORE INTO counterparty_earliest VALUES (?, ?, ?, ?, ?)"
_KEEP_TWO_EARLIEST = (
    "DELETE FROM counterparty_earliest WHERE customer_id = ?1 AND counterparty_account = ?2"
    " AND (ts_us, event_id) > (SELECT ts_us, event_id FROM counterparty_earliest"
    " WHERE customer_id = ?1 AND counterparty_account = ?2"
    " ORDER BY ts_us, event_id LIMIT 1 OFFSET 1)"
)
_NOTE_LAST_SEEN = (
    "INSERT INTO counterparty_last_seen VALUES (?, ?, ?) ON CONFLICT DO UPDATE"
    " SET last_us = max(last_us, excluded.last_us)"
)
# Files written before pairs were forgotten: every known pair counts as seen at its latest.
_BACKFILL_LAST_SEEN = (
    "INSERT OR IGNORE INTO counterparty_last_seen SELECT customer_id, counterparty_account,"
    " MAX(ts_us) FROM counterparty_earliest GROUP BY customer_id, counterparty_account"
)
_FORGET_PAYEES = (
    "DELETE FROM counterparty_earliest WHERE (customer_id, counterparty_account) IN"
    " (SELECT customer_id, counterparty_account FROM counterparty_last_seen WHERE last_us < ?1)"
)
_FORGET_LAST_SEEN = "DELETE FROM counterparty_last_seen WHERE last_us < ?"
# Forgetting old payees scans an index; once per hour of event time is often enough.
_FORGET_STEP_US = 3_600_000_000
_KINDS = {kind.value: kind for kind in TransactionKind}
_DIRECTIONS = {direction.value: direction for direction in Direction}
_CHANNELS = {channel.value: channel for channel in Channel}

_Row = tuple[
    str,
    str,
    str | None,
    str,
    str,
    str,
    int,
    str,
    str | None,
    str,
    str | None,
    str | None,
    int | None,
]


class SQLiteHistoryStore:
    """History in an embedded SQLite file (WAL mode); survives a restart of the process.

    Instants are stored as UTC microseconds for ordering and range scans, beside the original
    ISO text so each timestamp comes back with the offset it was recorded with.
    ``path=":memory:"`` gives a private, non-persistent database (useful in tests).
    Retention, refusal of future timestamps and ``payee_horizon`` work as in
    ``InMemoryHistoryStore``; a write that fails raises ``StoreError`` with SQLite's reason.
    """

    def __init__(
        self,
        path: str | Path,
        retention: timedelta | None = None,
        *,
        payee_horizon: timedelta | None = DEFAULT_PAYEE_HORIZON,
    ) -> None:
        if retention is not None and retention <= timedelta(0):
            raise ValueError("retention must be positive")
        if payee_horizon is not None and payee_horizon <= timedelta(0):
            raise ValueError("payee_horizon must be positive")
        self._retention_us = None if retention is None else retention // _MICROSECOND
        self._payee_horizon_us = None if payee_horizon is None else payee_horizon // _MICROSECOND
        self._path = str(path)
        self._lock = threading.Lock()
        # One connection shared under a lock: sqlite3 objects are not safe for unguarded
        # concurrent use, and a counter's write rate is far below what one connection serves.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self._path, check_same_thread=False, isolation_level=None
        )
        conn = self._conn
        conn.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL survives a process crash; only a power loss may drop the last commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        # Index inserts land all over the (customer, time) B-trees; SQLite's default 2 MiB page
        # cache turns a large history into disk traffic, so give it 64 MiB.
        conn.execute("PRAGMA cache_size=-65536")
        migrate_sqlite(conn, "history", _MIGRATIONS, self._path)
        # Resume the clock from the newest records; capped at the wall clock for a file written
        # before future timestamps were refused.
        latest = utc_micros(datetime.now(UTC) + MAX_CLOCK_SKEW)
        newest = conn.execute(
            "SELECT ts_us FROM history ORDER BY ts_us DESC LIMIT ?", (_RetentionClock.SPAN,)
        ).fetchall()
        self._clock = _RetentionClock(min(key, latest) for (key,) in reversed(newest))
        self._evicted_to: int | None = None
        self._payees_forgotten_to: int | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"history store {self._path} is closed")
        return self._conn

    @staticmethod
    def _row(key: int, rec: HistoryRecord) -> tuple[object, ...]:
        return (
            rec.event_id,
            rec.customer_id,
            rec.account_id,
            rec.kind.value,
            rec.direction.value,
            rec.channel.value,
            rec.amount_fen,
            key,
            rec.timestamp.isoformat(),
            rec.counterparty_account,
            rec.currency.value,
            rec.branch_id,
            rec.purpose,
            rec.customer_age,
        )

    def record(self, rec: HistoryRecord) -> None:
        self.record_many((rec,))

    def record_many(self, recs: Iterable[HistoryRecord]) -> None:
        """Record several records in one transaction (bulk load); all or nothing."""
        keyed = [(plausible_micros(rec), rec) for rec in recs]
        if not keyed:
            return
        payees = [
            (
                rec.customer_id,
                rec.counterparty_account,
                key,
                rec.event_id,
                rec.timestamp.isoformat(),
            )
            for key, rec in keyed
            if rec.counterparty_account is not None
        ]
        with self._lock:
            conn = self._connection()
            clock = self._clock.copy()  # kept only if the transaction commits
            now = max(clock.advance(key) for key, _ in keyed)
            cutoff: int | None = None
            if self._retention_us is not None:
                cutoff = now - self._retention_us
                keyed = [(key, rec) for key, rec in keyed if key >= cutoff]
            forget_before: int | None = None
            if self._payee_horizon_us is not None:
                forget_before = now - self._payee_horizon_us
                done = self._payees_forgotten_to
                if done is not None and forget_before < done + _FORGET_STEP_US:
                    forget_before = None
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_INSERT, [self._row(key, rec) for key, rec in keyed])
                # Noted even for records too old to keep: a late record still proves the payee.
                conn.executemany(_NOTE_COUNTERPARTY, payees)
                conn.executemany(_KEEP_TWO_EARLIEST, {(row[0], row[1]) for row in payees})
                conn.executemany(_NOTE_LAST_SEEN, [row[:3] for row in payees])
                evict = cutoff is not None and (
                    self._evicted_to is None or cutoff > self._evicted_to
                )
                if evict:
                    conn.execute("DELETE FROM history WHERE ts_us < ?", (cutoff,))
                if forget_before is not None:
                    conn.execute(_FORGET_PAYEES, (forget_before,))
                    conn.execute(_FORGET_LAST_SEEN, (forget_before,))
                conn.execute("COMMIT")
            except sqlite3.Error as error:
                self._roll_back(conn)
                raise StoreError(f"history store {self._path}: {error}") from error
            except BaseException:
                self._roll_back(conn)
                raise
            self._clock = clock
            if evict:
                self._evicted_to = cutoff
            if forget_before is not None:
                self._payees_forgotten_to = forget_before

    @staticmethod
    def _roll_back(conn: sqlite3.Connection) -> None:
        # SQLite rolls back by itself on some errors (a full disk among them); a second
        # ROLLBACK would then replace the real reason with "no transaction is active".
        if conn.in_transaction:
            with suppress(sqlite3.Error):  # the error being raised says more
                conn.execute("ROLLBACK")

    @staticmethod
    def _decode(row: _Row) -> HistoryRecord:
        (
            event_id,
            customer,
            account,
            kind,
            direction,
            channel,
            amount,
            ts_iso,
            payee,
            currency,
            branch,
            purpose,
            age,
        ) = row
        return HistoryRecord(
            event_id=event_id,
            customer_id=customer,
            account_id=account,
            kind=_KINDS[kind],
            direction=_DIRECTIONS[direction],
            channel=_CHANNELS[channel],
            amount_fen=amount,
            timestamp=datetime.fromisoformat(ts_iso),
            counterparty_account=payee,
            currency=Currency(currency),
            branch_id=branch,
            purpose=purpose,
            customer_age=age,
        )

    def _select(self, column: str, value: str, since: datetime | None) -> list[HistoryRecord]:
        sql = f"SELECT {_COLUMNS} FROM history WHERE {column} = ?"
        params: tuple[object, ...] = (value,)
        if since is not None:
            sql += " AND ts_us >= ?"
            params = (value, utc_micros(since))
        sql += " ORDER BY ts_us, event_id"
        with self._lock:
            rows = self._connection().execute(sql, params).fetchall()
        return [self._decode(row) for row in rows]

    def for_customer(self, customer_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        return self._select("customer_id", customer_id, since)

    def for_account(self, account_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        return self._select("account_id", account_id, since)

    def for_branch(self, branch_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        return self._select("branch_id", branch_id, since)

    def for_counterparty(
        self, counterparty_account: str, since: datetime | None
    ) -> Sequence[HistoryRecord]:
        return self._select("counterparty_account", counterparty_account, since)

    def earliest_with_counterparty(
        self, customer_id: str, counterparty_account: str
    ) -> Sequence[tuple[datetime, str]]:
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT ts_iso, event_id FROM counterparty_earliest WHERE customer_id = ?"
                    " AND counterparty_account = ? ORDER BY ts_us, event_id LIMIT 2",
                    (customer_id, counterparty_account),
                )
                .fetchall()
            )
        return [(datetime.fromisoformat(ts_iso), event_id) for ts_iso, event_id in rows]

    def evict_before(self, cutoff: datetime) -> int:
        with self._lock:
            cursor = self._connection().execute(
                "DELETE FROM history WHERE ts_us < ?", (utc_micros(cutoff),)
            )
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __len__(self) -> int:
        with self._lock:
            count: int = self._connection().execute("SELECT COUNT(*) FROM history").fetchone()[0]
        return count

    def __enter__(self) -> SQLiteHistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
