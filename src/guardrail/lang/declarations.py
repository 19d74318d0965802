"""Named context a pack declares beside its rules: windowed aggregates, watchlists, lexicons.

Rules refer to them by name (``window.cash_out_today``, ``counterparty.account in
watchlist.involved_accounts``, ``purpose.text matches lexicon.safe_account``); the checker
refuses an unknown name with a suggestion, and ``guardrail.context`` computes their values.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from guardrail.model.event import Channel, Direction, TransactionKind
from guardrail.model.money import Currency

DeclName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Aggregate(str, Enum):
    SUM = "sum"
    COUNT = "count"
    COUNT_DISTINCT = "count_distinct"
    MAX = "max"


class Span(str, Enum):
    SAME_DAY = "same_day"  # the calendar day of the event in the branch's time zone
    HOURS = "hours"  # the last ``length`` hours up to the event's timestamp
    DAYS = "days"  # the last ``length`` * 24 hours up to the event's timestamp
    SINCE_ACCOUNT_OPENED = "since_account_opened"


class Measure(str, Enum):
    """What a window aggregates over the matching history records."""

    AMOUNT = "amount"  # money, in fen inside engines
    COUNTERPARTY = "counterparty"  # counterparty account (for count_distinct)
    CUSTOMER = "customer"  # the customer (for count_distinct across customers)
    EVENT = "event"  # the record itself (for count)


class WindowKey(str, Enum):
    CUSTOMER = "customer"
    ACCOUNT = "account"
    COUNTERPARTY = "counterparty"  # same customer, same payee account
    BRANCH = "branch"  # every customer of the event's branch
    PAYEE = "payee"  # every customer paying the event's payee account


class WindowSpec(_Spec):
    """A windowed aggregate over the customer's executed history, as of the event's timestamp."""

    name: DeclName
    aggregate: Aggregate
    measure: Measure = Measure.AMOUNT
    span: Span
    length: Annotated[int, Field(ge=1, le=3660)] | None = None
    key: WindowKey = WindowKey.CUSTOMER
    kinds: tuple[TransactionKind, ...] = ()  # empty: every kind
    direction: Direction | None = None
    channels: tuple[Channel, ...] = ()  # empty: every channel
    currency: Currency | None = Field(
        default=None,
        description="only records in this currency; sum and max default to CNY, counts to any",
    )
    same_purpose: bool = Field(
        default=False, description="only records with the event's purpose code (none: 0)"
    )
    min_customer_age: Annotated[int, Field(ge=0, le=150)] | None = Field(
        default=None, description="only records of customers at least this old"
    )
    include_current: bool = Field(
        default=True, description="count the event being screened as if it were executed"
    )
    description: str = ""

    @property
    def fixed_length_us(self) -> int | None:
        """How far back the window reaches from the event, in microseconds, when that is a
        fixed length (spans of hours or days); None for calendar and account-age spans."""
        if self.span is Span.HOURS:
            return (self.length or 0) * 3_600_000_000
        if self.span is Span.DAYS:
            return (self.length or 0) * 86_400_000_000
        return None

    @model_validator(mode="after")
    def _consistent(self) -> WindowSpec:
        if self.span in (Span.HOURS, Span.DAYS) and self.length is None:
            raise ValueError(f"span {self.span.value!r} needs a length")
        if self.span not in (Span.HOURS, Span.DAYS) and self.length is not None:
            raise ValueError(f"span {self.span.value!r} takes no length")
        if self.aggregate in (Aggregate.SUM, Aggregate.MAX) and self.measure is not Measure.AMOUNT:
            raise ValueError(f"{self.aggregate.value} needs measure 'amount'")
        if self.aggregate is Aggregate.COUNT_DISTINCT and self.measure not in (
            Measure.COUNTERPARTY,
            Measure.CUSTOMER,
        ):
            raise ValueError("count_distinct needs measure 'counterparty' or 'customer'")
        if self.aggregate is Aggregate.COUNT and self.measure is Measure.CUSTOMER:
            raise ValueError("measure 'customer' needs aggregate count_distinct")
        if self.measure is Measure.CUSTOMER and self.key not in (WindowKey.BRANCH, WindowKey.PAYEE):
            raise ValueError("distinct customers need key 'branch' or 'payee'")
        return self

    @property
    def across_customers(self) -> bool:
        """True when the window reads other customers' history (key branch or payee)."""
        return self.key in (WindowKey.BRANCH, WindowKey.PAYEE)

    @property
    def effective_currency(self) -> Currency | None:
        """The currency this window adds up: adding yuan to dollars is meaningless, so a money
        window without one means CNY; a count window without one counts every currency."""
        if self.currency is None and self.is_money:
            return Currency.CNY
        return self.currency

    @property
    def is_money(self) -> bool:
        return self.aggregate in (Aggregate.SUM, Aggregate.MAX)

    @property
    def lookback_hours(self) -> int | None:
        """Longest history this window can need, for eviction; None means unbounded."""
        if self.span is Span.SAME_DAY:
            return 24
        if self.span is Span.HOURS:
            return self.length
        if self.span is Span.DAYS:
            return None if self.length is None else self.length * 24
        return None


class WatchlistSpec(_Spec):
    """A named list of values (accounts, customer ids, phone numbers) loaded from CSV or YAML."""

    name: DeclName
    path: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    description: str = ""


class LexiconSpec(_Spec):
    """A named set of keywords matched against free text after normalisation."""

    name: DeclName
    terms: tuple[Annotated[str, StringConstraints(min_length=1, max_length=100)], ...]
    title_zh: str = ""
    title_en: str = ""

    @model_validator(mode="after")
    def _has_terms(self) -> LexiconSpec:
        if not self.terms:
            raise ValueError(f"lexicon {self.name!r} has no terms")
        return self
