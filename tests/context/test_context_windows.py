"""Windows and derived features, computed as of the event's timestamp on the branch's clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from context_factory import at, make_event, window
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.context import (
    HistoryRecord,
    InMemoryHistoryStore,
    compute_window,
    derived_history_features,
    static_derived_features,
)
from guardrail.context.windows import window_function
from guardrail.model.event import Channel, Event, TransactionKind
from guardrail.model.money import Currency

CASH_OUT_TODAY = window(
    name="cash_out_today",
    aggregate="sum",
    span="same_day",
    kinds=["cash_withdrawal"],
    direction="out",
)
THRESHOLD_FEN = 50_000_00  # PBOC large-value cash report: ¥50,000 same-day cumulative
PAYEE = "6222333344445555"


def store_with(*events: Event) -> InMemoryHistoryStore:
    store = InMemoryHistoryStore()
    for event in events:
        store.record(HistoryRecord.from_event(event))
    return store


def test_two_withdrawals_same_day_cross_the_cumulative_threshold() -> None:
    first = make_event("e1", at("2025-03-01 09:30"), "30000")
    second = make_event("e2", at("2025-03-01 15:10"), "30000")
    store = store_with(first)
    assert compute_window(CASH_OUT_TODAY, first, InMemoryHistoryStore()) == 30_000_00
    assert compute_window(CASH_OUT_TODAY, second, store) == 60_000_00 >= THRESHOLD_FEN


def test_the_same_two_across_local_midnight_do_not() -> None:
    first = make_event("e1", at("2025-03-01 23:30"), "30000")
    second = make_event("e2", at("2025-03-02 00:30"), "30000")
    assert compute_window(CASH_OUT_TODAY, second, store_with(first)) == 30_000_00 < THRESHOLD_FEN


def test_the_day_is_the_branch_day_not_the_utc_day() -> None:
    # 15:30Z and 16:30Z share a UTC date, but in Shanghai they are 23:30 and 00:30 next day.
    utc = dt.UTC
    first = make_event("e1", dt.datetime(2025, 3, 1, 15, 30, tzinfo=utc), "30000")
    second = make_event("e2", dt.datetime(2025, 3, 1, 16, 30, tzinfo=utc), "30000")
    assert compute_window(CASH_OUT_TODAY, second, store_with(first)) == 30_000_00
    # In a London branch the same instants are one local day.
    first_ldn = make_event("e1", first.timestamp, "30000", timezone="Europe/London")
    second_ldn = make_event("e2", second.timestamp, "30000", timezone="Europe/London")
    assert compute_window(CASH_OUT_TODAY, second_ldn, store_with(first_ldn)) == 60_000_00


def test_later_history_is_invisible_as_of_the_event() -> None:
    early = make_event("e1", at("2025-03-01 09:00"), "30000")
    late = make_event("e2", at("2025-03-01 17:00"), "30000")
    store = store_with(early, late)
    assert compute_window(CASH_OUT_TODAY, early, store) == 30_000_00
    assert compute_window(CASH_OUT_TODAY, late, store) == 60_000_00


def test_include_current_never_double_counts() -> None:
    first = make_event("e1", at("2025-03-01 09:00"), "100")
    second = make_event("e2", at("2025-03-01 10:00"), "200")
    store = store_with(first, second)  # the event under screening is already recorded
    assert compute_window(CASH_OUT_TODAY, second, store) == 300_00
    history_only = CASH_OUT_TODAY.model_copy(update={"include_current": False})
    assert compute_window(history_only, second, store) == 100_00
    assert compute_window(history_only, second, store_with(first)) == 100_00


def test_current_event_must_pass_the_filters() -> None:
    deposit = make_event("e1", at("2025-03-01 09:00"), "500", kind=TransactionKind.CASH_DEPOSIT)
    assert compute_window(CASH_OUT_TODAY, deposit, InMemoryHistoryStore()) == 0


@pytest.fixture
def busy_store() -> InMemoryHistoryStore:
    """A week of mixed activity for customer C1 (two accounts) and one other customer."""
    events = [
        make_event(
            "d1", at("2025-02-20 10:00"), "9000", payee="P1-0001"
        ),  # before account A2 opened
        make_event(
            "a1", at("2025-02-24 10:00"), "1000", kind=TransactionKind.TRANSFER, payee="P1-0001"
        ),
        make_event(
            "a2", at("2025-02-27 10:00"), "2000", kind=TransactionKind.TRANSFER, payee="P2-0002"
        ),
        make_event(
            "a3",
            at("2025-02-28 20:00"),
            "5000",
            kind=TransactionKind.CASH_DEPOSIT,
            account_id="A2-0000",
            opened_on=dt.date(2025, 2, 25),
        ),
        make_event("a4", at("2025-03-01 08:00"), "300", channel=Channel.ATM),
        make_event(
            "a5",
            at("2025-03-01 09:00"),
            "4000",
            kind=TransactionKind.TRANSFER,
            payee="P1-0001",
            channel=Channel.MOBILE,
        ),
        make_event("o1", at("2025-03-01 09:30"), "99999", customer_id="C2", account_id="B1-0000"),
    ]
    return store_with(*events)


NOW = make_event(
    "now",
    at("2025-03-01 10:00"),
    "700",
    kind=TransactionKind.TRANSFER,
    payee="P1-0001",
    account_id="A2-0000",
    opened_on=dt.date(2025, 2, 25),
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # spans (sum, every kind; includes the current ¥700)
        ({"aggregate": "sum", "span": "same_day"}, 300_00 + 4000_00 + 700_00),
        ({"aggregate": "sum", "span": "hours", "length": 14}, 5000_00 + 300_00 + 4000_00 + 700_00),
        ({"aggregate": "sum", "span": "days", "length": 3}, 2000_00 + 5000_00 + 4300_00 + 700_00),
        ({"aggregate": "sum", "span": "days", "length": 30}, 21300_00 + 700_00),
        ({"aggregate": "sum", "span": "since_account_opened"}, 11300_00 + 700_00),
        # aggregates
        ({"aggregate": "count", "measure": "event", "span": "days", "length": 30}, 7),
        ({"aggregate": "max", "span": "days", "length": 30}, 9000_00),
        ({"aggregate": "max", "span": "same_day", "include_current": False}, 4000_00),
        (
            {
                "aggregate": "count_distinct",
                "measure": "counterparty",
                "span": "days",
                "length": 30,
            },
            2,
        ),
        ({"aggregate": "count", "measure": "counterparty", "span": "days", "length": 30}, 5),
        # filters
        ({"aggregate": "sum", "span": "days", "length": 30, "kinds": ["transfer"]}, 7700_00),
        ({"aggregate": "sum", "span": "days", "length": 30, "direction": "in"}, 5000_00),
        ({"aggregate": "count", "span": "days", "length": 30, "channels": ["atm", "mobile"]}, 2),
        (
            {
                "aggregate": "sum",
                "span": "days",
                "length": 30,
                "kinds": ["cash_withdrawal"],
                "channels": ["counter"],
                "direction": "out",
            },
            9000_00,
        ),
        # keys
        ({"aggregate": "sum", "span": "days", "length": 30, "key": "account"}, 5000_00 + 700_00),
        ({"aggregate": "count", "span": "days", "length": 30, "key": "counterparty"}, 4),
        (
            {
                "aggregate": "sum",
                "span": "same_day",
                "key": "counterparty",
                "include_current": False,
            },
            4000_00,
        ),
    ],
)
def test_window_spans_aggregates_filters_and_keys(
    busy_store: InMemoryHistoryStore, fields: dict[str, Any], expected: int
) -> None:
    assert compute_window(window(**fields), NOW, busy_store) == expected
    assert window_function(window(**fields))(NOW, busy_store, None) == expected


def test_hours_window_start_is_inclusive(busy_store: InMemoryHistoryStore) -> None:
    exactly_one_hour = window(aggregate="count", span="hours", length=1, include_current=False)
    assert compute_window(exactly_one_hour, NOW, busy_store) == 1  # a5 at 09:00


def test_account_key_without_account_falls_back_to_customer(
    busy_store: InMemoryHistoryStore,
) -> None:
    no_account = make_event("x", at("2025-03-01 10:00"), "1", account_id=None)
    spec = window(aggregate="count", span="same_day", key="account", include_current=False)
    assert compute_window(spec, no_account, busy_store) == 2
    since_open = window(aggregate="count", span="since_account_opened", include_current=False)
    assert compute_window(since_open, no_account, busy_store) == 6


def test_counterparty_key_without_payee_is_zero(busy_store: InMemoryHistoryStore) -> None:
    no_payee = make_event("x", at("2025-03-01 10:00"), "1")
    assert (
        compute_window(
            window(aggregate="count", span="same_day", key="counterparty"), no_payee, busy_store
        )
        == 0
    )


def test_unknown_time_zone_is_a_clear_error() -> None:
    # Refused when the event is built (#9 defect 8), before any feature could need it.
    with pytest.raises(ValueError, match="Mars/Olympus_Mons"):
        make_event("x", at("2025-03-01 10:00"), "1", timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="passwd"):
        make_event("y", at("2025-03-01 10:00"), "1", timezone="../../etc/passwd")


def test_derived_history_features_quick_in_quick_out() -> None:
    # A card opened last week receives ¥48,000 at night; next morning the customer withdraws
    # ¥50,000 in cash to a payee never paid before (快进快出).
    opened = dt.date(2025, 2, 22)
    card = "6217000099990000"
    inbound = make_event(
        "in1",
        at("2025-02-28 22:00"),
        "48000",
        kind=TransactionKind.CASH_DEPOSIT,
        account_id=card,
        opened_on=opened,
    )
    old_in = make_event(
        "in0",
        at("2025-02-27 08:00"),
        "1000",
        kind=TransactionKind.CASH_DEPOSIT,
        account_id=card,
        opened_on=opened,
    )
    out_earlier = make_event(
        "o1",
        at("2025-03-01 08:00"),
        "100",
        kind=TransactionKind.TRANSFER,
        account_id=card,
        opened_on=opened,
        payee="P9-0009",
    )
    out_same_payee = make_event(
        "o2",
        at("2025-03-01 08:30"),
        "100",
        kind=TransactionKind.TRANSFER,
        account_id=card,
        opened_on=opened,
        payee=PAYEE,
    )
    store = store_with(old_in, inbound, out_earlier)
    event = make_event(
        "w",
        at("2025-03-01 09:00"),
        "50000",
        kind=TransactionKind.TRANSFER,
        account_id=card,
        opened_on=opened,
        payee=PAYEE,
    )
    assert derived_history_features(event, store) == {
        "counterparty.first_seen": True,
        "history.inbound_24h": 48000_00,
        "history.inbound_24h_pct": 96,
        "history.outbound_count_24h": 1,
        "history.same_payee_count_today": 0,
    }
    store.record(HistoryRecord.from_event(out_same_payee))
    store.record(HistoryRecord.from_event(event))  # recording the event itself changes nothing
    features = derived_history_features(event, store)
    assert features["counterparty.first_seen"] is False
    assert features["history.same_payee_count_today"] == 1
    assert features["history.outbound_count_24h"] == 2


def test_derived_history_features_edge_cases() -> None:
    store = store_with(
        make_event(
            "i1", at("2025-03-01 08:00"), "10", kind=TransactionKind.CASH_DEPOSIT, account_id=None
        ),
        make_event("y", at("2025-02-28 23:00"), "10", payee=PAYEE),  # yesterday, same payee
    )
    no_account = make_event("x", at("2025-03-01 09:00"), "0", account_id=None)
    features = derived_history_features(no_account, store)
    assert features["counterparty.first_seen"] is None
    assert features["history.inbound_24h"] == 10_00  # the customer's records, no account
    assert features["history.inbound_24h_pct"] is None  # zero amount
    assert features["history.same_payee_count_today"] == 0
    to_payee = make_event("z", at("2025-03-01 09:00"), "5", account_id=None, payee=PAYEE)
    features = derived_history_features(to_payee, store)
    assert features["counterparty.first_seen"] is False
    assert features["history.same_payee_count_today"] == 0  # yesterday does not count today
    assert features["history.inbound_24h_pct"] == 200


def test_static_derived_features() -> None:
    event = make_event(
        "s",
        dt.datetime(2025, 2, 28, 17, 30, tzinfo=dt.UTC),  # 01:30 on 1 March in Shanghai
        "10",
        birth_date=dt.date(1965, 3, 1),
        opened_on=dt.date(2025, 2, 22),
        last_activity_on=dt.date(2024, 9, 1),
        payee_region="CN-GD-SZ",
        branch_region="CN-GD",
    )
    assert static_derived_features(event) == {
        "customer.age": 60,
        "customer.is_elderly": True,
        "account.age_days": 7,
        "account.days_since_last_activity": 181,
        "counterparty.other_region": False,
        "event.local_hour": 1,
    }
    younger = make_event(
        "t",
        at("2025-02-28 23:59"),
        "10",
        birth_date=dt.date(1965, 3, 1),
        account_id=None,
        payee_region="CN-YN",
    )
    features = static_derived_features(younger)
    assert features["customer.age"] == 59
    assert features["customer.is_elderly"] is False
    assert features["account.age_days"] is None
    assert features["account.days_since_last_activity"] is None
    assert features["counterparty.other_region"] is True
    assert features["event.local_hour"] == 23
    bare = make_event("u", at("2025-03-01 10:00"), "10")
    features = static_derived_features(bare)
    assert features["customer.age"] is None and features["customer.is_elderly"] is None
    assert features["counterparty.other_region"] is None


def test_leap_day_birthday() -> None:
    born = dt.date(1964, 2, 29)
    on_28 = make_event("a", at("2025-02-28 12:00"), "1", birth_date=born)
    on_1 = make_event("b", at("2025-03-01 12:00"), "1", birth_date=born)
    assert static_derived_features(on_28)["customer.age"] == 60
    assert static_derived_features(on_1)["customer.age"] == 61


# --- hypothesis: more history never lowers a sum, count or max ---------------------------

KINDS = list(TransactionKind)
CHANNELS = list(Channel)
BASE = at("2025-03-01 00:00")

records = st.builds(
    lambda i, minutes, kind, channel, fen, payee, account, usd: HistoryRecord(
        event_id=f"h{i}",
        customer_id="C1",
        account_id=account,
        kind=kind,
        direction=make_event("k", BASE, kind=kind).direction,
        channel=channel,
        amount_fen=fen,
        timestamp=BASE + dt.timedelta(minutes=minutes),
        counterparty_account=payee,
        currency=Currency.USD if usd else Currency.CNY,
    ),
    st.integers(0, 10**9),
    st.integers(-60 * 24 * 40, 60 * 24 * 2),
    st.sampled_from(KINDS),
    st.sampled_from(CHANNELS),
    st.integers(0, 10**10),
    st.sampled_from([None, "P1-0001", "P2-0002", "P3-0003"]),
    st.sampled_from([None, "6222000011112222", "A9-0000"]),
    st.booleans(),
)

specs = st.builds(
    lambda agg, span, length, key, kinds, direction, channels, current: window(
        aggregate=agg,
        measure={"count_distinct": "counterparty", "count": "event"}.get(agg, "amount"),
        span=span,
        length=length if span in ("hours", "days") else None,
        key=key,
        kinds=kinds,
        direction=direction,
        channels=channels,
        include_current=current,
    ),
    st.sampled_from(["sum", "count", "max", "count_distinct"]),
    st.sampled_from(["same_day", "hours", "days", "since_account_opened"]),
    st.integers(1, 800),
    st.sampled_from(["customer", "account", "counterparty"]),
    st.lists(st.sampled_from(KINDS), max_size=3, unique=True),
    st.sampled_from([None, "in", "out", "none"]),
    st.lists(st.sampled_from(CHANNELS), max_size=2, unique=True),
    st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=specs,
    before=st.lists(records, max_size=30, unique_by=lambda r: r.event_id),
    added=st.lists(records, max_size=30, unique_by=lambda r: r.event_id),
    minutes=st.integers(0, 60 * 24),
    kind=st.sampled_from(KINDS),
    payee=st.sampled_from([None, "P1-0001", "P2-0002"]),
)
def test_adding_history_never_lowers_a_window(
    spec: Any,
    before: list[HistoryRecord],
    added: list[HistoryRecord],
    minutes: int,
    kind: TransactionKind,
    payee: str | None,
) -> None:
    event = make_event(
        "current",
        BASE + dt.timedelta(minutes=minutes),
        "123.45",
        kind=kind,
        payee=payee,
        opened_on=dt.date(2025, 2, 10),
    )
    store = InMemoryHistoryStore()
    for record in before:
        store.record(record)
    value_before = compute_window(spec, event, store)
    for record in added:
        store.record(record)
    assert compute_window(spec, event, store) >= value_before


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=specs,
    history=st.lists(records, max_size=30, unique_by=lambda r: r.event_id),
    minutes=st.integers(0, 60 * 24),
    kind=st.sampled_from(KINDS),
    payee=st.sampled_from([None, "P1-0001", "P2-0002"]),
    currency=st.sampled_from([Currency.CNY, Currency.USD]),
    min_age=st.sampled_from([None, 60]),
    born=st.sampled_from([None, dt.date(1950, 3, 1), dt.date(1990, 1, 1)]),
    recorded=st.sampled_from([None, 0, 90]),
    others=st.lists(st.integers(0, 29), max_size=10),
)
def test_the_resolver_s_window_function_gives_what_compute_window_gives(
    spec: Any,
    history: list[HistoryRecord],
    minutes: int,
    kind: TransactionKind,
    payee: str | None,
    currency: Currency,
    min_age: int | None,
    born: dt.date | None,
    recorded: int | None,
    others: list[int],
) -> None:
    """The screening path's specialised window (``window_function``) is the same function as
    ``compute_window``, with or without the event's own record at hand, and with the event
    already in history (``recorded``: that many minutes before its own instant, as when an
    event id comes back with another timestamp). ``others``: the records that belong to
    another customer (sharing an account or a payee with the event's)."""
    spec = spec.model_copy(update={"min_customer_age": min_age})
    history = [
        replace(record, customer_id="C2") if index in others else record
        for index, record in enumerate(history)
    ]
    event = make_event(
        "current",
        BASE + dt.timedelta(minutes=minutes),
        "123.45",
        kind=kind,
        payee=payee,
        opened_on=dt.date(2025, 2, 10),
    )
    customer = event.customer.model_copy(update={"birth_date": born})
    amount = event.amount.model_copy(update={"currency": currency})
    event = event.model_copy(update={"customer": customer, "amount": amount})
    stored = []
    if recorded is not None:
        earlier = event.timestamp - dt.timedelta(minutes=recorded)
        stored = [HistoryRecord.from_event(event.model_copy(update={"timestamp": earlier}))]
    store = InMemoryHistoryStore()
    for record in [*history, *stored]:
        store.record(record)
    expected = compute_window(spec, event, store)
    specialised = window_function(spec)
    assert specialised(event, store, None) == expected
    assert specialised(event, store, HistoryRecord.from_event(event)) == expected
    # Any other store is read through the protocol (by datetime), with the same results.
    other = _OtherStore()
    for record in [*history, *stored]:
        other.record(record)
    assert specialised(event, other, None) == expected
    assert specialised(event, other, HistoryRecord.from_event(event)) == expected


class _OtherStore(InMemoryHistoryStore):
    """Not the in-memory store itself: the window functions read it as any store."""


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=st.lists(records, max_size=30, unique_by=lambda r: r.event_id),
    minutes=st.integers(0, 60 * 24),
    kind=st.sampled_from(KINDS),
    payee=st.sampled_from([None, "P1-0001", "P2-0002"]),
    account=st.sampled_from([None, "6222000011112222"]),
    offset=st.sampled_from([dt.timedelta(0), dt.timedelta(hours=8), dt.timedelta(hours=-5)]),
    recorded=st.booleans(),
)
def test_derived_history_features_from_memory_equal_those_read_through_the_protocol(
    history: list[HistoryRecord],
    minutes: int,
    kind: TransactionKind,
    payee: str | None,
    account: str | None,
    offset: dt.timedelta,
    recorded: bool,
) -> None:
    """The in-memory store's derived features (read by instant) equal the ones computed from
    the records any store hands out, with the event's own record stored or not."""
    when = (BASE + dt.timedelta(minutes=minutes)).astimezone(dt.timezone(offset))
    event = make_event("current", when, "123.45", kind=kind, payee=payee, account_id=account)
    memory, other = InMemoryHistoryStore(), _OtherStore()
    for record in history:
        memory.record(record)
        other.record(record)
    if recorded:
        memory.record(HistoryRecord.from_event(event))
        other.record(HistoryRecord.from_event(event))
    assert derived_history_features(event, memory) == derived_history_features(event, other)
