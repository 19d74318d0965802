"""Builders of events and window specs for the context tests (and the replay subprocess)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from guardrail.lang.declarations import WindowSpec
from guardrail.model.event import (
    Account,
    Branch,
    Channel,
    Counterparty,
    Customer,
    Event,
    Purpose,
    PurposeCode,
    TransactionKind,
)
from guardrail.model.money import Money

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def at(text: str) -> dt.datetime:
    """A Shanghai wall-clock time ``YYYY-MM-DD HH:MM[:SS]`` as an aware datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def make_event(
    event_id: str,
    timestamp: dt.datetime,
    amount: str | int = "100.00",
    *,
    kind: TransactionKind = TransactionKind.CASH_WITHDRAWAL,
    channel: Channel = Channel.COUNTER,
    customer_id: str = "C1",
    account_id: str | None = "6222000011112222",
    opened_on: dt.date = dt.date(2020, 1, 1),
    last_activity_on: dt.date | None = None,
    payee: str | None = None,
    payee_region: str | None = None,
    birth_date: dt.date | None = None,
    branch_region: str = "CN-ZJ",
    timezone: str = "Asia/Shanghai",
    purpose_text: str = "",
    notes: str = "",
) -> Event:
    """A valid event with sensible defaults; only what a test cares about needs saying."""
    account = (
        None
        if account_id is None
        else Account(id=account_id, opened_on=opened_on, last_activity_on=last_activity_on)
    )
    counterparty = (
        None
        if payee is None and payee_region is None
        else Counterparty(account=payee, region=payee_region)
    )
    return Event(
        event_id=event_id,
        kind=kind,
        amount=Money(value=Decimal(str(amount))),
        channel=channel,
        timestamp=timestamp,
        branch=Branch(id="B001", region=branch_region, timezone=timezone),
        teller_id="T01",
        customer=Customer(id=customer_id, birth_date=birth_date),
        account=account,
        counterparty=counterparty,
        purpose=Purpose(code=PurposeCode.OTHER, text=purpose_text) if purpose_text else None,
        notes=notes,
    )


def window(**fields: Any) -> WindowSpec:
    """A WindowSpec, validated from plain values (enum values as strings are fine)."""
    fields.setdefault("name", "w")
    return WindowSpec.model_validate(fields, strict=False)
