"""Realise window and history features with concrete prior transactions.

The proof encoding leaves windows and derived history features free (an over-approximation).
When a difference needs them, a second query adds a bounded symbolic history: up to
``MAX_PRIOR`` executed transactions before the event, each with a kind, channel, currency,
amount, how long before the event it happened, whose it was (this customer or another), its
account, branch, payee, purpose and customer age, and defines every window and history feature
exactly as ``guardrail.context.windows`` computes it from them. A model of that query is a
history that produces the window values; no model means the difference could not be realised
with that many prior transactions (reported as such, never as a proof either way).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import z3

from guardrail.analysis.counterexample import EVENT_ACCOUNT, EVENT_PAYEE
from guardrail.analysis.encode import Encoder, Feature
from guardrail.lang.catalog import LOCAL_DATE_KEY
from guardrail.lang.declarations import Aggregate, Measure, Span, WindowKey, WindowSpec
from guardrail.lang.pack import KIND_KEY
from guardrail.model.event import DIRECTION_OF_KIND, Channel, Direction, TransactionKind
from guardrail.model.money import Currency

PRIOR_STEPS = (4, 8)  # histories searched: short ones first (faster), then longer
MAX_PRIOR = PRIOR_STEPS[-1]
HISTORY_KEYS = frozenset(
    {
        "counterparty.first_seen",
        "history.inbound_24h",
        "history.inbound_24h_pct",
        "history.outbound_count_24h",
        "history.same_payee_count_today",
    }
)
_KINDS = tuple(TransactionKind)
_CHANNELS = tuple(Channel)
_CURRENCIES = tuple(Currency)
_DAY_S = 86400
_MAX_DAYS = 3000  # how far back a prior transaction (or the account opening) may lie


def needs_history(encoder: Encoder) -> bool:
    """Whether the formulas read a window or a derived history feature."""
    return any(name.startswith("window.") or name in HISTORY_KEYS for name in encoder.features)


@dataclass
class _Prior:
    """One symbolic executed transaction before the event."""

    exists: z3.BoolRef
    kind: z3.ArithRef
    channel: z3.ArithRef
    currency: z3.ArithRef
    amount: z3.ArithRef  # fen
    before_s: z3.ArithRef  # seconds before the event
    customer: z3.ArithRef  # 0: the event's customer; i: another customer
    own_account: z3.BoolRef  # on the event's account
    payee: z3.ArithRef  # 0: none; 1: the event's payee; j: another payee
    same_branch: z3.BoolRef
    same_purpose: z3.BoolRef
    age_known: z3.BoolRef
    age: z3.ArithRef


def _index(feature: Feature, value: str) -> int:
    return feature.values.index(value)


class HistoryEncoding:
    """The bounded history and the definitions of every history feature over it."""

    def __init__(self, encoder: Encoder, records: int = MAX_PRIOR) -> None:
        self.encoder = encoder
        plain = encoder.plain
        self.kind = plain(KIND_KEY)
        self.channel = plain("channel")
        self.currency = plain("currency")
        self.amount = plain("amount")
        self.hour = plain("event.local_hour")
        self.age = plain("customer.age")
        self.account_age = plain("account.age_days")
        self.purpose = plain("purpose.code")
        self.has_payee = z3.Bool("event:has_payee")
        self.constraints: list[z3.BoolRef] = []
        self.priors = [self._prior(i, records) for i in range(records)]
        self._event_constraints()
        self._payee_fields()
        for name, feature in list(encoder.features.items()):
            spec = encoder.windows.get(name)
            if spec is not None:
                self.constraints += [feature.known, feature.value == self._window(spec)]
        self._derived()
        self._off_boundaries()

    # -- variables ---------------------------------------------------------------------------

    def _prior(self, i: int, records: int) -> _Prior:
        prior = _Prior(
            z3.Bool(f"prior{i}:exists"),
            z3.Int(f"prior{i}:kind"),
            z3.Int(f"prior{i}:channel"),
            z3.Int(f"prior{i}:currency"),
            z3.Int(f"prior{i}:amount"),
            z3.Int(f"prior{i}:before_s"),
            z3.Int(f"prior{i}:customer"),
            z3.Bool(f"prior{i}:own_account"),
            z3.Int(f"prior{i}:payee"),
            z3.Bool(f"prior{i}:same_branch"),
            z3.Bool(f"prior{i}:same_purpose"),
            z3.Bool(f"prior{i}:age_known"),
            z3.Int(f"prior{i}:age"),
        )
        opened_s = self.account_age.value * _DAY_S + self.hour.value * 3600
        self.constraints += [
            prior.kind >= 0,
            prior.kind < len(_KINDS),
            prior.channel >= 0,
            prior.channel < len(_CHANNELS),
            prior.currency >= 0,
            prior.currency < len(_CURRENCIES),
            prior.amount >= 0,
            prior.amount <= 10**12,
            prior.before_s >= 1,
            prior.before_s <= opened_s,  # after the account was opened
            prior.customer >= 0,
            prior.customer <= records,
            z3.Implies(prior.own_account, prior.customer == 0),
            prior.payee >= 0,
            prior.payee <= records + 1,
            z3.Implies(prior.payee == 1, self.has_payee),
            z3.Implies(prior.same_purpose, self.purpose.known),
            prior.age >= 0,
            prior.age <= 150,
        ]
        return prior

    def _event_constraints(self) -> None:
        self.constraints += [
            self.channel.known,  # an event always has a channel (default counter)
            self.hour.known,
            self.account_age.known,  # the counterexample event always names its account
            self.account_age.value <= _MAX_DAYS,
        ]
        local_date = self.encoder.features.get(LOCAL_DATE_KEY)
        if local_date is None:  # no rule reads the date: the event falls on the default day
            return
        date = local_date.value
        self.constraints += [
            # a real calendar day late enough for every prior transaction to be after 2000
            date >= 20100101,
            date <= 20251231,
            date % 100 >= 1,
            date % 100 <= 28,
            (date / 100) % 100 >= 1,
            (date / 100) % 100 <= 12,
        ]

    def _payee_fields(self) -> None:
        for name, feature in self.encoder.features.items():
            if name.startswith("counterparty.") and name != "counterparty.first_seen":
                self.constraints.append(z3.Implies(feature.known, self.has_payee))

    def _off_boundaries(self) -> None:
        """No prior transaction exactly on a window's first instant: there the engines count it
        (windows include their start) and the strict comparisons here would not."""
        day_start = self.hour.value * 3600
        starts: list[z3.ArithRef] = [day_start, z3.IntVal(_DAY_S)]
        for spec in self.encoder.windows.values():
            if spec.span is Span.HOURS:
                starts.append(z3.IntVal((spec.length or 0) * 3600))
            elif spec.span is Span.DAYS:
                starts.append(z3.IntVal((spec.length or 0) * _DAY_S))
        for prior in self.priors:
            self.constraints += [prior.before_s != start for start in starts]

    # -- filters -----------------------------------------------------------------------------

    def _kind_is(self, kind: z3.ArithRef, kinds: tuple[TransactionKind, ...]) -> z3.BoolRef:
        return z3.Or(*(kind == _KINDS.index(k) for k in kinds))

    def _direction_is(self, kind: z3.ArithRef, direction: Direction) -> z3.BoolRef:
        return self._kind_is(kind, tuple(k for k, d in DIRECTION_OF_KIND.items() if d is direction))

    def _same_currency(self, prior: z3.ArithRef, event: z3.ArithRef) -> z3.BoolRef:
        return z3.Or(
            *(
                z3.And(prior == _CURRENCIES.index(c), event == _index(self.currency, c.value))
                for c in _CURRENCIES
                if c.value in self.currency.values
            )
        )

    def _within(self, prior: _Prior, spec: WindowSpec) -> z3.BoolRef:
        # Strictly inside the span: a record exactly on the boundary is left out of the search.
        if spec.span is Span.SAME_DAY:
            return prior.before_s < self.hour.value * 3600
        if spec.span is Span.HOURS:
            return prior.before_s < (spec.length or 0) * 3600
        if spec.span is Span.DAYS:
            return prior.before_s < (spec.length or 0) * _DAY_S
        return z3.BoolVal(True)  # since the account opened: every prior is after the opening

    def _keyed(self, prior: _Prior, key: WindowKey) -> z3.BoolRef:
        if key is WindowKey.CUSTOMER:
            return prior.customer == 0
        if key is WindowKey.ACCOUNT:
            return prior.own_account
        if key is WindowKey.COUNTERPARTY:
            return z3.And(prior.customer == 0, prior.payee == 1)
        if key is WindowKey.BRANCH:
            return prior.same_branch
        return prior.payee == 1  # WindowKey.PAYEE

    def _selected(self, prior: _Prior, spec: WindowSpec) -> z3.BoolRef:
        parts = [prior.exists, self._within(prior, spec), self._keyed(prior, spec.key)]
        if spec.kinds:
            parts.append(self._kind_is(prior.kind, spec.kinds))
        if spec.direction is not None:
            parts.append(self._direction_is(prior.kind, spec.direction))
        if spec.channels:
            parts.append(z3.Or(*(prior.channel == _CHANNELS.index(c) for c in spec.channels)))
        currency = spec.effective_currency
        if currency is not None:
            parts.append(prior.currency == _CURRENCIES.index(currency))
        if spec.same_purpose:
            parts.append(prior.same_purpose)
        if spec.min_customer_age is not None:
            parts += [prior.age_known, prior.age >= spec.min_customer_age]
        return z3.And(*parts)

    def _current(self, spec: WindowSpec) -> z3.BoolRef:
        """The screened event counts in the window (``include_current``)."""
        if not spec.include_current:
            return z3.BoolVal(False)
        kind = self.kind.value
        parts: list[z3.BoolRef] = []
        if spec.kinds:
            parts.append(z3.Or(*(kind == _index(self.kind, k.value) for k in spec.kinds)))
        if spec.direction is not None:
            ways = [k for k, d in DIRECTION_OF_KIND.items() if d is spec.direction]
            parts.append(z3.Or(*(kind == _index(self.kind, k.value) for k in ways)))
        if spec.channels:
            channel = self.channel.value
            parts.append(z3.Or(*(channel == _index(self.channel, c.value) for c in spec.channels)))
        currency = spec.effective_currency
        if currency is not None:
            parts.append(self.currency.value == _index(self.currency, currency.value))
        if spec.min_customer_age is not None:
            parts += [self.age.known, self.age.value >= spec.min_customer_age]
        return z3.And(*parts) if parts else z3.BoolVal(True)

    # -- definitions -------------------------------------------------------------------------

    def _window(self, spec: WindowSpec) -> z3.ArithRef:
        chosen = [(p, self._selected(p, spec)) for p in self.priors]
        current = self._current(spec)
        value = self._aggregate(spec, chosen, current)
        zero_when: list[z3.BoolRef] = []
        if spec.key in (WindowKey.COUNTERPARTY, WindowKey.PAYEE):
            zero_when.append(z3.Not(self.has_payee))
        if spec.same_purpose:
            zero_when.append(z3.Not(self.purpose.known))
        if zero_when:
            return z3.If(z3.Or(*zero_when), z3.IntVal(0), value)
        return value

    def _aggregate(
        self, spec: WindowSpec, chosen: list[tuple[_Prior, z3.BoolRef]], current: z3.BoolRef
    ) -> z3.ArithRef:
        one, zero = z3.IntVal(1), z3.IntVal(0)
        if spec.aggregate is Aggregate.SUM:
            return z3.Sum(
                *(z3.If(s, p.amount, zero) for p, s in chosen),
                z3.If(current, self.amount.value, zero),
            )
        if spec.aggregate is Aggregate.MAX:
            result: z3.ArithRef = z3.If(current, self.amount.value, zero)
            for p, s in chosen:
                result = z3.If(z3.And(s, p.amount > result), p.amount, result)
            return result
        if spec.aggregate is Aggregate.COUNT_DISTINCT and spec.measure is Measure.CUSTOMER:
            return z3.Sum(
                *(
                    z3.If(
                        z3.Or(
                            *(z3.And(s, p.customer == c) for p, s in chosen),
                            *([current] if c == 0 else []),
                        ),
                        one,
                        zero,
                    )
                    for c in range(len(self.priors) + 1)
                )
            )
        if spec.aggregate is Aggregate.COUNT_DISTINCT:
            return z3.Sum(
                *(
                    z3.If(
                        z3.Or(
                            *(z3.And(s, p.payee == v) for p, s in chosen),
                            *([z3.And(current, self.has_payee)] if v == 1 else []),
                        ),
                        one,
                        zero,
                    )
                    for v in range(1, len(self.priors) + 2)
                )
            )
        if spec.measure is Measure.COUNTERPARTY:
            return z3.Sum(
                *(z3.If(z3.And(s, p.payee != 0), one, zero) for p, s in chosen),
                z3.If(z3.And(current, self.has_payee), one, zero),
            )
        return z3.Sum(*(z3.If(s, one, zero) for _, s in chosen), z3.If(current, one, zero))

    def _derived(self) -> None:
        """``derived_history_features`` over the bounded history."""
        features = self.encoder.features
        one, zero = z3.IntVal(1), z3.IntVal(0)
        event_currency = self.currency.value
        inbound = z3.Sum(
            *(
                z3.If(
                    z3.And(
                        p.exists,
                        p.own_account,
                        p.before_s < _DAY_S,
                        self._direction_is(p.kind, Direction.IN),
                        self._same_currency(p.currency, event_currency),
                    ),
                    p.amount,
                    zero,
                )
                for p in self.priors
            )
        )
        definitions: dict[str, tuple[z3.BoolRef, z3.ExprRef]] = {
            "counterparty.first_seen": (
                self.has_payee,
                z3.Not(
                    z3.Or(*(z3.And(p.exists, p.customer == 0, p.payee == 1) for p in self.priors))
                ),
            ),
            "history.inbound_24h": (z3.BoolVal(True), inbound),
            "history.inbound_24h_pct": (
                self.amount.value != 0,
                (inbound * 100) / self.amount.value,
            ),
            "history.outbound_count_24h": (
                z3.BoolVal(True),
                z3.Sum(
                    *(
                        z3.If(
                            z3.And(
                                p.exists,
                                p.customer == 0,
                                p.before_s < _DAY_S,
                                self._direction_is(p.kind, Direction.OUT),
                            ),
                            one,
                            zero,
                        )
                        for p in self.priors
                    )
                ),
            ),
            "history.same_payee_count_today": (
                z3.BoolVal(True),
                z3.If(
                    self.has_payee,
                    z3.Sum(
                        *(
                            z3.If(
                                z3.And(
                                    p.exists,
                                    p.customer == 0,
                                    p.payee == 1,
                                    p.before_s < self.hour.value * 3600,
                                ),
                                one,
                                zero,
                            )
                            for p in self.priors
                        )
                    ),
                    zero,
                ),
            ),
        }
        for key, (known, value) in definitions.items():
            feature = features.get(key)
            if feature is not None:
                self.constraints += [
                    feature.known == known,
                    z3.Implies(known, feature.value == value),
                ]

    # -- reading a model back ----------------------------------------------------------------

    def has_payee_in(self, model: z3.ModelRef) -> bool:
        return bool(z3.is_true(model.eval(self.has_payee, model_completion=True)))

    def prior_events(self, model: z3.ModelRef, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The prior transactions of ``model`` as event JSON objects, oldest first, to record
        as executed before screening ``event``."""

        def number(expr: z3.ExprRef) -> int:
            return int(model.eval(expr, model_completion=True).as_long())

        def true(expr: z3.ExprRef) -> bool:
            return bool(z3.is_true(model.eval(expr, model_completion=True)))

        when = dt.datetime.fromisoformat(event["timestamp"])
        purpose = event.get("purpose")
        priors: list[tuple[int, dict[str, Any]]] = []
        for i, p in enumerate(self.priors):
            if not true(p.exists):
                continue
            at = when - dt.timedelta(seconds=number(p.before_s))
            customer = number(p.customer)
            payee = number(p.payee)
            record: dict[str, Any] = {
                "event_id": f"analyze-prior-{i}",
                "kind": _KINDS[number(p.kind)].value,
                "amount": {
                    "value": str(Decimal(number(p.amount)) / 100),
                    "currency": _CURRENCIES[number(p.currency)].value,
                },
                "channel": _CHANNELS[number(p.channel)].value,
                "timestamp": at.isoformat(),
                "branch": dict(event["branch"]),
                "teller_id": "T0001",
                "customer": {
                    "id": event["customer"]["id"] if customer == 0 else f"C-OTHER-{customer}"
                },
                "account": {
                    "id": EVENT_ACCOUNT if true(p.own_account) else f"62220000000009{i:02d}",
                    "opened_on": event["account"]["opened_on"],
                },
            }
            if not true(p.same_branch):
                record["branch"]["id"] = "ANALYZE-OTHER-BRANCH"
            if payee:
                record["counterparty"] = {
                    "account": EVENT_PAYEE if payee == 1 else f"62220000000010{payee:02d}"
                }
            if true(p.same_purpose) and purpose is not None:
                record["purpose"] = dict(purpose)
            if true(p.age_known):
                record["customer"]["birth_date"] = _born(at.date(), number(p.age)).isoformat()
            priors.append((number(p.before_s), record))
        return [record for _, record in sorted(priors, key=lambda item: -item[0])]


def _born(on: dt.date, age: int) -> dt.date:
    """A birth date that makes someone exactly ``age`` whole years old on ``on``."""
    try:
        return on.replace(year=on.year - age)
    except ValueError:  # 29 February in a year without one
        return on.replace(year=on.year - age, day=28)
