"""One executed transaction as history keeps it, and how stores turn it into a row and back."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from guardrail.errors import EventError
from guardrail.model.event import (
    Channel,
    Direction,
    Event,
    TransactionKind,
    implausible_timestamp,
)
from guardrail.model.money import Currency

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def utc_micros(ts: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch (UTC)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"history needs aware timestamps, got naive {ts.isoformat()}")
    return aware_micros(ts)


def aware_micros(ts: datetime) -> int:
    """``utc_micros`` of a timestamp already known to be aware (an event's): no check."""
    delta = ts - _EPOCH  # exact integer arithmetic, faster than ``// MICROSECOND``
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def whole_years(born: date, on: date) -> int:
    """Age in whole years on ``on`` of someone born on ``born``."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # the event model has already checked that the zone exists


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
    customer_age: int | None = None  # whole years on the event's branch-local date (age filters)

    @classmethod
    def from_event(cls, event: Event) -> HistoryRecord:
        """The record of ``event`` once it has been executed."""
        account = event.account.id if event.account is not None else None
        payee = event.counterparty.account if event.counterparty is not None else None
        born = event.customer.birth_date
        # on the branch's calendar, as customer.age: the date must not depend on the UTC offset
        # the teller system happened to write the timestamp with
        age = (
            None
            if born is None
            else whole_years(born, event.timestamp.astimezone(_zone(event.branch.timezone)).date())
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


def plausible_micros(rec: HistoryRecord) -> int:
    """``rec``'s instant in UTC microseconds; ``EventError`` if it is in the future or absurd.

    A record dated ahead would move the retention clock and evict everyone's recent history."""
    problem = implausible_timestamp(rec.timestamp)
    if problem is not None:
        raise EventError([("timestamp", f"{problem} (event {rec.event_id})")])
    return utc_micros(rec.timestamp)


# The columns of a stored record, in the order of :func:`record_row` and :func:`record_from_row`
# (the SQLite and PostgreSQL stores share them): the instant both as UTC microseconds, for
# ordering and range scans, and as the original ISO text, so each timestamp comes back with
# the offset it was recorded with.
ROW_COLUMNS = (
    "event_id, customer_id, account_id, kind, direction, channel, amount_fen, ts_us, ts_iso, "
    "counterparty_account, currency, branch_id, purpose, customer_age"
)
_KINDS = {kind.value: kind for kind in TransactionKind}
_DIRECTIONS = {direction.value: direction for direction in Direction}
_CHANNELS = {channel.value: channel for channel in Channel}


def record_row(rec: HistoryRecord, key: int | None = None) -> tuple[object, ...]:
    """``rec`` as a row of :data:`ROW_COLUMNS`; ``key`` is its instant if already computed."""
    return (
        rec.event_id,
        rec.customer_id,
        rec.account_id,
        rec.kind.value,
        rec.direction.value,
        rec.channel.value,
        rec.amount_fen,
        utc_micros(rec.timestamp) if key is None else key,
        rec.timestamp.isoformat(),
        rec.counterparty_account,
        rec.currency.value,
        rec.branch_id,
        rec.purpose,
        rec.customer_age,
    )


def record_from_row(row: Sequence[Any]) -> HistoryRecord:
    """The record a row of :data:`ROW_COLUMNS` holds."""
    (
        event_id,
        customer,
        account,
        kind,
        direction,
        channel,
        amount,
        _,
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
        amount_fen=int(amount),
        timestamp=datetime.fromisoformat(ts_iso),
        counterparty_account=payee,
        currency=Currency(currency),
        branch_id=branch,
        purpose=purpose,
        customer_age=None if age is None else int(age),
    )


class KeyedReads:
    """The history protocol's reads by one key column, for a store that can select the
    records whose ``column`` equals a value (oldest first, from ``since`` when given)."""

    def _select(self, column: str, value: str, since: datetime | None) -> list[HistoryRecord]:
        raise NotImplementedError

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
