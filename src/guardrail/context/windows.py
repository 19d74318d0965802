"""Windowed aggregates and derived features, computed as of the event's own timestamp.

Everything here reads history up to and including the event's instant and nothing later, so
replaying recorded history gives exactly the answers live screening gave.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from guardrail.context.history import (
    CrossCustomerHistory,
    HistoryRecord,
    HistoryStore,
    InMemoryHistoryStore,
)
from guardrail.context.history.records import aware_micros, whole_years
from guardrail.engine.codegen import compile_function
from guardrail.errors import GuardrailError
from guardrail.lang.declarations import Aggregate, Measure, Span, WindowKey, WindowSpec
from guardrail.model.event import DIRECTION_OF_KIND, Direction, Event
from guardrail.model.money import Currency

ELDERLY_AGE = 60  # Law on the Protection of the Rights of the Elderly, art. 2
_DAY = timedelta(hours=24)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; a clear ValueError when it does not exist."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name like 'Asia/Shanghai')"
        ) from exc


def local_time(event: Event) -> datetime:
    """The event's timestamp on the branch's wall clock."""
    return event.timestamp.astimezone(zone(event.branch.timezone))


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz``."""
    return datetime.combine(day, time(0), tzinfo=tz)


@lru_cache(maxsize=4096)
def _midnight(zone_name: str, day: date) -> datetime:
    """``local_midnight`` by zone name, kept: every screening of a day asks for the same one."""
    return local_midnight(day, zone(zone_name))


def window_start(spec: WindowSpec, event: Event) -> datetime | None:
    """The first instant ``spec`` reads for ``event`` (None: the whole retained history)."""
    if spec.span is Span.SAME_DAY:
        name = event.branch.timezone
        return _midnight(name, event.timestamp.astimezone(zone(name)).date())
    if spec.span is Span.HOURS:
        return event.timestamp - timedelta(hours=spec.length or 0)
    if spec.span is Span.DAYS:
        return event.timestamp - (spec.length or 0) * _DAY
    # since_account_opened: from the branch-local midnight of the opening day; without an
    # account there is no opening date and the whole retained history counts.
    if event.account is None:
        return None
    return local_midnight(event.account.opened_on, zone(event.branch.timezone))


class WindowStoreError(GuardrailError):
    """The history store cannot answer a window keyed across customers."""


def _candidates(spec: WindowSpec, event: Event, store: HistoryStore) -> Sequence[HistoryRecord]:
    since = window_start(spec, event)
    if spec.across_customers:
        if not isinstance(store, CrossCustomerHistory):
            raise WindowStoreError(
                f"window {spec.name!r} is keyed by {spec.key.value} across customers, and the "
                f"history store {type(store).__name__} cannot read by branch or payee"
            )
        if spec.key is WindowKey.BRANCH:
            return store.for_branch(event.branch.id, since)
        payee = event.counterparty.account if event.counterparty is not None else None
        return [] if payee is None else store.for_counterparty(payee, since)
    if spec.key is WindowKey.ACCOUNT and event.account is not None:
        return store.for_account(event.account.id, since)
    # key customer, counterparty (filtered below), or account when the event has none
    return store.for_customer(event.customer.id, since)


def compute_window(
    spec: WindowSpec, event: Event, store: HistoryStore, current: HistoryRecord | None = None
) -> int:
    """The value of ``spec`` for ``event``: fen for sum/max, a count otherwise.

    Counts executed records in [window start, event timestamp], filtered by kinds, direction
    and channels; ``include_current`` adds the event itself exactly once whether or not it has
    already been recorded, and without it the event's own record never counts. A counterparty
    window of an event without a payee account is 0. ``current`` is the event's own record
    when the caller already built it (several windows of one screening share it).
    """
    if spec.key in (WindowKey.COUNTERPARTY, WindowKey.PAYEE):
        payee = event.counterparty.account if event.counterparty is not None else None
        if payee is None:
            return 0
    else:
        payee = None
    purpose: str | None = None
    if spec.same_purpose:
        if event.purpose is None:
            return 0
        purpose = event.purpose.code.value
    min_age = spec.min_customer_age
    end = event.timestamp
    kinds = frozenset(spec.kinds)
    channels = frozenset(spec.channels)
    direction = spec.direction
    currency = spec.effective_currency
    selected: list[HistoryRecord] = [
        rec
        for rec in _candidates(spec, event, store)
        if rec.timestamp <= end
        and rec.event_id != event.event_id
        and (payee is None or rec.counterparty_account == payee)
        and (not kinds or rec.kind in kinds)
        and (direction is None or rec.direction is direction)
        and (not channels or rec.channel in channels)
        and (currency is None or rec.currency is currency)
        and (purpose is None or rec.purpose == purpose)
        and (min_age is None or (rec.customer_age is not None and rec.customer_age >= min_age))
    ]
    if spec.include_current:
        if current is None:
            current = HistoryRecord.from_event(event)
        if (
            (not kinds or current.kind in kinds)
            and (direction is None or current.direction is direction)
            and (not channels or current.channel in channels)
            and (currency is None or current.currency is currency)
            and (
                min_age is None
                or (current.customer_age is not None and current.customer_age >= min_age)
            )
        ):
            selected.append(current)
    return _aggregate(spec, selected)


def needs_records(spec: WindowSpec) -> bool:
    """True for windows only :func:`compute_window` answers (keyed across customers, or with a
    purpose or age filter): a store that computes windows itself hands these back."""
    return spec.across_customers or spec.same_purpose or spec.min_customer_age is not None


class WindowFunction(Protocol):
    """``compute_window`` for one spec: ``current`` is the event's own record and ``local``
    its ``local_time``, when the caller already has them (several windows share them)."""

    def __call__(
        self,
        event: Event,
        store: HistoryStore,
        current: HistoryRecord | None = None,
        local: datetime | None = None,
    ) -> int: ...


class _Own:
    """The event being screened as the aggregates read it, when it counts in its window: its
    ``HistoryRecord`` is not built (a window without the caller's record would build one for
    every screening), and its amount is converted only by a sum or a max."""

    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        self.event = event

    @property
    def amount_fen(self) -> int:
        return self.event.amount.fen

    @property
    def customer_id(self) -> str:
        return self.event.customer.id

    @property
    def counterparty_account(self) -> str | None:
        counterparty = self.event.counterparty
        return None if counterparty is None else counterparty.account


def _start_function(spec: WindowSpec) -> Callable[[Event, datetime | None], datetime | None]:
    """``window_start`` for ``spec`` given the event and, if known, its ``local_time``, with a
    fixed span's length worked out once."""
    fixed = spec.fixed_length_us
    if fixed is not None:
        length = timedelta(microseconds=fixed)
        return lambda event, local: event.timestamp - length
    if spec.span is Span.SAME_DAY:
        return lambda event, local: (
            window_start(spec, event)
            if local is None
            else _midnight(event.branch.timezone, local.date())
        )
    return lambda event, local: window_start(spec, event)


def _start_micros_function(spec: WindowSpec) -> Callable[[Event, datetime | None], int | None]:
    """``_start_function`` as an instant in microseconds (``utc_micros``; None: no start), for
    the in-memory store's reads by instant."""
    fixed = spec.fixed_length_us
    if fixed is not None:
        return lambda event, local: aware_micros(event.timestamp) - fixed
    if spec.span is Span.SAME_DAY:
        return lambda event, local: _midnight_micros(
            event.branch.timezone,
            (
                event.timestamp.astimezone(zone(event.branch.timezone)) if local is None else local
            ).date(),
        )
    start = _start_function(spec)

    def since_opened(event: Event, local: datetime | None) -> int | None:
        since = start(event, local)
        return None if since is None else aware_micros(since)

    return since_opened


@lru_cache(maxsize=4096)
def _midnight_micros(zone_name: str, day: date) -> int:
    return aware_micros(_midnight(zone_name, day))


def window_function(spec: WindowSpec) -> WindowFunction:
    """``compute_window`` specialised for one spec, with the same result for every event and
    store (what the resolver's window step calls): the spec's filters are read once here, the
    record filter tests only what the spec constrains, and the event's own record is not built
    unless the caller has it."""
    if spec.across_customers or spec.same_purpose:  # rare: the general path

        def general(
            event: Event,
            store: HistoryStore,
            current: HistoryRecord | None = None,
            local: datetime | None = None,
        ) -> int:
            return compute_window(spec, event, store, current)

        return general
    by_payee = spec.key is WindowKey.COUNTERPARTY
    by_account = spec.key is WindowKey.ACCOUNT
    kinds = frozenset(spec.kinds)
    channels = frozenset(spec.channels)
    direction = spec.direction
    currency = spec.effective_currency
    min_age = spec.min_customer_age
    include_current = spec.include_current
    filtered = bool(kinds or channels or direction is not None or currency is not None)
    filtered = filtered or min_age is not None

    start = _start_function(spec)
    start_micros = _start_micros_function(spec)
    aggregate = _aggregator(spec)
    select = _selector(spec)

    def counts(rec: HistoryRecord | Event) -> bool:
        if min_age is not None:
            age = rec.customer_age if isinstance(rec, HistoryRecord) else _age_on_utc_date(rec)
            if age is None or age < min_age:
                return False
        return (
            (not kinds or rec.kind in kinds)
            and (direction is None or rec.direction is direction)
            and (not channels or rec.channel in channels)
            and (currency is None or _currency(rec) is currency)
        )

    def compute(
        event: Event,
        store: HistoryStore,
        current: HistoryRecord | None = None,
        local: datetime | None = None,
    ) -> int:
        payee = None
        if by_payee:
            payee = event.counterparty.account if event.counterparty is not None else None
            if payee is None:
                return 0
        since = start(event, local)
        if by_account and event.account is not None:
            candidates = store.for_account(event.account.id, since)
        else:
            candidates = store.for_customer(event.customer.id, since)
        selected: list[HistoryRecord | _Own] = (
            select(candidates, event.timestamp, event.event_id, payee) if candidates else []
        )
        if include_current:
            if current is not None:
                if not filtered or counts(current):
                    selected.append(current)
            elif not filtered or counts(event):
                selected.append(_Own(event))
        return aggregate(selected)

    return _memory_window(spec, compute, counts, start_micros, aggregate)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _memory_window(
    spec: WindowSpec,
    fallback: WindowFunction,
    counts: Callable[[HistoryRecord | Event], bool],
    start_micros: Callable[[Event, datetime | None], int | None],
    aggregate: Callable[[Sequence[HistoryRecord | _Own]], int],
) -> WindowFunction:
    """``fallback`` (the window function of ``spec``) generated as one flat function for the
    in-memory store, which it reads by instant: the start, the read, the event's own record
    and a count or a sum without a call each; any other store goes to ``fallback``."""
    by_payee = spec.key is WindowKey.COUNTERPARTY
    lines = []
    if by_payee:
        lines += [
            "counterparty = e.counterparty",
            "payee = None if counterparty is None else counterparty.account",
            "if payee is None:",
            "    return 0",
        ]
    else:
        lines.append("payee = None")
    lines += [
        "if store.__class__ is not _Memory:",
        "    return _fallback(e, store, current, local)",
    ]
    lines += [  # ``aware_micros`` of the event's instant, inline
        "delta = e.timestamp - _EPOCH",
        "at = (delta.days * 86400 + delta.seconds) * 1000000 + delta.microseconds",
    ]
    fixed = spec.fixed_length_us
    lines.append(
        f"since = at - {fixed}" if fixed is not None else "since = _start_micros(e, local)"
    )
    if by_payee:
        lines.append("records = store.customer_payee_between(e.customer.id, payee, since, at)")
    elif spec.key is WindowKey.ACCOUNT:
        lines += [
            "account = e.account",
            "records = (store.customer_between(e.customer.id, since, at) if account is None"
            " else store.account_between(account.id, since, at))",
        ]
    else:
        lines.append("records = store.customer_between(e.customer.id, since, at)")
    # The store cut the records at the event's instant: only the filters are left to test.
    lines.append("selected = _select(records, None, e.event_id, payee) if records else []")
    # The event's own record, when it counts: the record's tests, or ``counts`` of the event.
    event_tests = []
    if spec.kinds:
        event_tests.append("e.kind in _kinds")
    if spec.direction is not None:
        event_tests.append("_DIRECTION[e.kind] is _direction")
    if spec.channels:
        event_tests.append("e.channel in _channels")
    if spec.effective_currency is not None:
        event_tests.append("e.amount.currency is _currency")
    if spec.min_customer_age is not None:
        event_tests = ["_counts(e)"]
    record_counts = " and ".join(_record_tests(spec, "current")) or "True"
    event_counts = " and ".join(event_tests) or "True"
    plain_count = spec.aggregate is Aggregate.COUNT and spec.measure is not Measure.COUNTERPARTY
    if not spec.include_current:
        own: list[str] = []
        total = "len(selected)" if plain_count else "_aggregate(selected)"
    elif plain_count:
        own = [
            "if current is not None:",
            f"    own = 1 if {record_counts} else 0",
            "else:",
            f"    own = 1 if {event_counts} else 0",
        ]
        total = "len(selected) + own"
    elif spec.aggregate is Aggregate.SUM:
        own = [
            "if current is not None:",
            f"    own = current.amount_fen if {record_counts} else 0",
            "else:",
            f"    own = e.amount.fen if {event_counts} else 0",
        ]
        total = "sum([rec.amount_fen for rec in selected]) + own"
    else:
        own = [
            "if current is not None:",
            f"    if {record_counts}:",
            "        selected.append(current)",
            f"elif {event_counts}:",
            "    selected.append(_Own(e))",
        ]
        total = "_aggregate(selected)"
    lines += [*own, f"return {total}"]
    namespace = {
        "_Memory": InMemoryHistoryStore,
        "_EPOCH": _EPOCH,
        "_fallback": fallback,
        "_counts": counts,
        "_select": _selector(spec, up_to_the_event=False),
        "_start_micros": start_micros,
        "_aggregate": aggregate,
        "_Own": _Own,
        "_DIRECTION": DIRECTION_OF_KIND,
        **_filter_namespace(spec),
    }
    window: WindowFunction = compile_function(
        "memory_window",
        lines,
        parameter="e, store, current=None, local=None",
        namespace=namespace,
    )
    return window


_Select = Callable[
    [Sequence[HistoryRecord], "datetime | None", str, "str | None"], "list[HistoryRecord | _Own]"
]


def _selector(spec: WindowSpec, *, up_to_the_event: bool = True) -> _Select:
    """The records of ``candidates`` that ``spec`` counts, as one generated comprehension that
    tests only what the spec constrains (a customer may have hundreds of records): up to the
    event's instant (unless the caller read only those: ``up_to_the_event=False``), not the
    event itself, to its payee when ``payee`` is given."""
    # Most selective first (the order of an ``and`` of plain tests changes no result): the
    # records come from the window's start, so the time test seldom rejects one.
    tests = []
    if spec.key is WindowKey.COUNTERPARTY:  # as ``window_function``'s payee
        tests.append("rec.counterparty_account == payee")
    tests += _record_tests(spec, "rec")
    if up_to_the_event:
        tests.append("rec.timestamp <= end")
    tests.append("rec.event_id != own_id")
    body = [f"return [rec for rec in candidates if {' and '.join(tests)}]"]
    select: _Select = compile_function(
        "select_records",
        body,
        parameter="candidates, end, own_id, payee",
        namespace=_filter_namespace(spec),
    )
    return select


def _record_tests(spec: WindowSpec, record: str) -> list[str]:
    """The tests (``counts``) of the record named ``record`` that ``spec`` constrains, in
    generated code reading :func:`_filter_namespace`."""
    tests = []
    if spec.kinds:
        tests.append(f"{record}.kind in _kinds")
    if spec.direction is not None:
        tests.append(f"{record}.direction is _direction")
    if spec.channels:
        tests.append(f"{record}.channel in _channels")
    if spec.effective_currency is not None:
        tests.append(f"{record}.currency is _currency")
    if spec.min_customer_age is not None:
        tests.append(f"{record}.customer_age is not None and {record}.customer_age >= _min_age")
    return tests


def _filter_namespace(spec: WindowSpec) -> dict[str, object]:
    """The spec's filter values under the names :func:`_record_tests` reads."""
    return {
        "_kinds": frozenset(spec.kinds),
        "_direction": spec.direction,
        "_channels": frozenset(spec.channels),
        "_currency": spec.effective_currency,
        "_min_age": spec.min_customer_age,
    }


def _currency(item: HistoryRecord | Event) -> Currency:
    return item.currency if isinstance(item, HistoryRecord) else item.amount.currency


def _age_on_utc_date(event: Event) -> int | None:
    """The customer's age as ``HistoryRecord.from_event`` records it."""
    born = event.customer.birth_date
    if born is None:
        return None
    on = event.timestamp.date()
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _aggregator(spec: WindowSpec) -> Callable[[Sequence[HistoryRecord | _Own]], int]:
    """``_aggregate`` for one spec: a plain count is ``len``, a sum one pass."""
    if spec.aggregate is Aggregate.SUM:
        return lambda records: sum([rec.amount_fen for rec in records])
    if spec.aggregate is Aggregate.COUNT and spec.measure is not Measure.COUNTERPARTY:
        return len
    return lambda records: _aggregate(spec, records)


def _aggregate(spec: WindowSpec, records: Sequence[HistoryRecord | _Own]) -> int:
    if spec.aggregate is Aggregate.SUM:
        return sum(rec.amount_fen for rec in records)
    if spec.aggregate is Aggregate.MAX:
        return max((rec.amount_fen for rec in records), default=0)
    if spec.aggregate is Aggregate.COUNT_DISTINCT:
        if spec.measure is Measure.CUSTOMER:
            return len({rec.customer_id for rec in records})
        return len({rec.counterparty_account for rec in records} - {None})
    if spec.measure is Measure.COUNTERPARTY:  # count of records that have a payee account
        return sum(1 for rec in records if rec.counterparty_account is not None)
    return len(records)


HistoryValue = int | bool | None


@runtime_checkable
class WindowedHistory(Protocol):
    """A history store that answers every window of a screening in one request (a database
    computing them where the records are), instead of handing records to :func:`compute_window`.
    Windows that :func:`needs_records` are still computed from its records, unless the store
    has ``answers_every_window = True``.
    """

    def window_values(
        self,
        event: Event,
        specs: Mapping[str, WindowSpec],
        current: HistoryRecord,
        *,
        derived: bool,
    ) -> dict[str, HistoryValue]:
        """Each window of ``specs`` by its key, exactly as :func:`compute_window` gives it, and
        with ``derived`` the :func:`derived_history_features` too; ``current`` is the event's
        own record (counted by windows that include the current event)."""
        ...


_WINDOWED: dict[type, bool] = {}


def is_windowed(store: object) -> bool:
    """Whether ``store`` is a :class:`WindowedHistory` (cached per type: a runtime protocol
    check costs tens of microseconds, and screening asks for every lazy feature)."""
    kind = type(store)
    known = _WINDOWED.get(kind)
    if known is None:
        known = _WINDOWED[kind] = isinstance(store, WindowedHistory)
    return known


def history_values(
    event: Event,
    specs: Mapping[str, WindowSpec],
    store: HistoryStore,
    current: HistoryRecord | None = None,
    *,
    derived: bool = True,
) -> dict[str, HistoryValue]:
    """Every window of ``specs`` (by key) and, with ``derived``, the derived history features of
    ``event``: one request to a :class:`WindowedHistory` store, record reads otherwise."""
    if current is None:
        current = HistoryRecord.from_event(event)
    if is_windowed(store):
        assert isinstance(store, WindowedHistory)
        # A windowed store computes the per-customer windows it was written for; windows across
        # customers or with purpose/age filters are computed from records (or fail loudly when
        # the store cannot read across customers), never silently answered as per-customer,
        # unless the store says it answers every window (``answers_every_window``).
        if getattr(store, "answers_every_window", False):
            simple = dict(specs)
        else:
            simple = {key: spec for key, spec in specs.items() if not needs_records(spec)}
        answered = store.window_values(event, simple, current, derived=derived)
        for key, spec in specs.items():
            if key not in simple:
                answered[key] = compute_window(spec, event, store, current)
        return answered
    values: dict[str, HistoryValue] = {
        key: compute_window(spec, event, store, current) for key, spec in specs.items()
    }
    if derived:
        values.update(derived_history_features(event, store))
    return values


def derived_day_starts(event: Event) -> tuple[datetime, datetime]:
    """The two instants the derived features count from: 24 hours before the event, and the
    start of the event's local day at its branch."""
    local_day_start = _midnight(event.branch.timezone, local_time(event).date())
    return event.timestamp - _DAY, local_day_start


def derived_values(
    event: Event, *, payee_seen_before: bool, inbound: int, outbound: int, same_payee_today: int
) -> dict[str, bool | int | None]:
    """The derived history features from their counts (wherever the counting was done)."""
    has_payee = event.counterparty is not None and event.counterparty.account is not None
    amount = event.amount.fen
    return {
        "counterparty.first_seen": not payee_seen_before if has_payee else None,
        "history.inbound_24h": inbound,
        "history.inbound_24h_pct": None if amount == 0 else inbound * 100 // amount,
        "history.outbound_count_24h": outbound,
        "history.same_payee_count_today": same_payee_today if has_payee else 0,
    }


def derived_history_features(event: Event, store: HistoryStore) -> dict[str, bool | int | None]:
    """History features every pack can use, as of the event and excluding the event itself."""
    if type(store) is InMemoryHistoryStore:
        return _memory_derived_features(event, store)
    end = event.timestamp
    payee = event.counterparty.account if event.counterparty is not None else None
    day_ago, local_day_start = derived_day_starts(event)
    since = min(day_ago, local_day_start)  # one read covers the local day and the last 24h
    recent = [
        rec
        for rec in store.for_customer(event.customer.id, since)
        if rec.timestamp <= end and rec.event_id != event.event_id
    ]
    seen_before = payee is not None and any(
        timestamp <= end and event_id != event.event_id
        for timestamp, event_id in store.earliest_with_counterparty(event.customer.id, payee)
    )
    if event.account is not None:
        account_id = event.account.id
        inbound_pool: Iterable[HistoryRecord] = [
            rec
            for rec in store.for_account(account_id, day_ago)
            if rec.timestamp <= end and rec.event_id != event.event_id
        ]
    else:
        inbound_pool = recent
    currency = event.amount.currency  # compared with this amount, so the same currency only
    return derived_values(
        event,
        payee_seen_before=seen_before,
        inbound=sum(
            rec.amount_fen
            for rec in inbound_pool
            if rec.direction is Direction.IN
            and rec.timestamp >= day_ago
            and rec.currency is currency
        ),
        outbound=sum(
            1 for rec in recent if rec.direction is Direction.OUT and rec.timestamp >= day_ago
        ),
        same_payee_today=0
        if payee is None
        else sum(
            1
            for rec in recent
            if rec.counterparty_account == payee and rec.timestamp >= local_day_start
        ),
    )


def _memory_derived_features(
    event: Event, store: InMemoryHistoryStore
) -> dict[str, bool | int | None]:
    """``derived_history_features`` from the in-memory store, read by instant: each count reads
    the records of its own span, so no record's timestamp is compared."""
    end = event.timestamp
    at = aware_micros(end)
    day_ago = at - _DAY_US
    local_day_start = _midnight_micros(event.branch.timezone, local_time(event).date())
    own = event.event_id
    customer = event.customer.id
    payee = event.counterparty.account if event.counterparty is not None else None
    last_day = [rec for rec in store.customer_between(customer, day_ago, at) if rec.event_id != own]
    seen_before = payee is not None and any(
        timestamp <= end and event_id != own
        for timestamp, event_id in store.earliest_with_counterparty(customer, payee)
    )
    if event.account is not None:
        inbound_pool = [
            rec
            for rec in store.account_between(event.account.id, day_ago, at)
            if rec.event_id != own
        ]
    else:
        inbound_pool = last_day
    currency = event.amount.currency
    inbound = sum(
        [
            rec.amount_fen
            for rec in inbound_pool
            if rec.direction is Direction.IN and rec.currency is currency
        ]
    )
    outbound = sum(1 for rec in last_day if rec.direction is Direction.OUT)
    same_payee_today = 0
    if payee is not None:
        same_payee_today = sum(
            1
            for rec in store.customer_payee_between(customer, payee, local_day_start, at)
            if rec.event_id != own
        )
    return derived_values(
        event,
        payee_seen_before=seen_before,
        inbound=inbound,
        outbound=outbound,
        same_payee_today=same_payee_today,
    )


_DAY_US = 24 * 3600 * 1_000_000


@lru_cache(maxsize=4096)  # a few hundred regions, asked for by every screening that reads them
def _province(region: str) -> str:
    return "-".join(region.split("-")[:2])


# The features of the event alone, on the branch's local calendar: key -> expression over the
# event ``e``, its ``local`` time, ``today`` (its local date) and ``age`` (STATIC_PRELUDE).
# ``static_derived_features`` is compiled from this table, and so is the generated screening
# (``context.compiled``), which computes only the keys a pack reads.
STATIC_EXPRESSIONS: dict[str, str] = {
    "customer.age": "age",
    "customer.is_elderly": f"None if age is None else age >= {ELDERLY_AGE}",
    "account.age_days": "None if e.account is None else (today - e.account.opened_on).days",
    "account.days_since_last_activity": (
        "None if e.account is None or e.account.last_activity_on is None"
        " else (today - e.account.last_activity_on).days"
    ),
    "counterparty.other_region": (
        "None if e.counterparty is None or e.counterparty.region is None"
        " else _province(e.counterparty.region) != _province(e.branch.region)"
    ),
    "event.local_hour": "local.hour",
}
STATIC_PRELUDE = (
    "today = local.date()",
    "age = None if (born := e.customer.birth_date) is None else _whole_years(born, today)",
)
STATIC_NAMESPACE: dict[str, object] = {"_whole_years": whole_years, "_province": _province}

_STATIC = compile_function(
    "static_derived",
    [
        *STATIC_PRELUDE,
        "return {" + ", ".join(f"{k!r}: {v}" for k, v in STATIC_EXPRESSIONS.items()) + "}",
    ],
    parameter="e, local",
    namespace=STATIC_NAMESPACE,
)


def static_derived_features(
    event: Event, local: datetime | None = None
) -> dict[str, int | bool | None]:
    """Features of the event alone (no history), on the branch's local calendar (``local``:
    the event's ``local_time``, when the caller has it)."""
    features: dict[str, int | bool | None] = _STATIC(
        event, local_time(event) if local is None else local
    )
    return features
