"""The PostgreSQL history store: the same answers as the in-memory store, computed in SQL."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from context.context_factory import make_event, window
from guardrail.context import HistoryRecord, InMemoryHistoryStore
from guardrail.context.windows import history_values
from guardrail.errors import StoreError
from guardrail.guard import Guard
from guardrail.lang.loader import load_pack
from guardrail.model.decision import Action
from guardrail.model.event import Channel, Direction, TransactionKind
from guardrail.model.money import Currency
from guardrail.stores import guard_from_path, open_history_store
from guardrail.stores.postgres.history import PostgresHistoryStore
from guardrail.stores.postgres.migrations import SchemaTooNew
from postgres_server import create_database, drop_database, start_private_server, with_database

KINDS = list(TransactionKind)
CHANNELS = list(Channel)
BASE = dt.datetime(2025, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
ZONES = ["Asia/Shanghai", "Europe/London", "America/New_York", "Asia/Kathmandu"]
PAYEES = [None, "P1-0001", "P2-0002", "P3-0003"]
ACCOUNTS = [None, "6222000011112222", "A9-0000"]
DIRECTIONS = {kind: make_event("k", BASE, kind=kind).direction for kind in KINDS}


@pytest.fixture(scope="module")
def pg_history(postgres_url: str) -> Iterator[PostgresHistoryStore]:
    url = create_database(postgres_url)
    store = open_history_store(url)
    assert isinstance(store, PostgresHistoryStore)
    try:
        yield store
    finally:
        store.close()
        drop_database(postgres_url, url)


def _truncate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE guardrail_history, guardrail_payee_seen")


records = st.builds(
    lambda i, customer, minutes, kind, channel, fen, payee, account, usd, offset, across: (
        HistoryRecord(
            event_id=f"h{i}",
            customer_id=customer,
            account_id=account,
            kind=kind,
            direction=DIRECTIONS[kind],
            channel=channel,
            amount_fen=fen,
            timestamp=(BASE + dt.timedelta(minutes=minutes)).astimezone(
                dt.timezone(dt.timedelta(hours=offset))
            ),
            counterparty_account=payee,
            currency=Currency.USD if usd else Currency.CNY,
            branch_id=across[0],
            purpose=across[1],
            customer_age=across[2],
        )
    ),
    st.integers(0, 10**6),
    st.sampled_from(["C1", "C2", "C3"]),
    st.integers(-60 * 24 * 40, 60 * 24 * 2),
    st.sampled_from(KINDS),
    st.sampled_from(CHANNELS),
    st.integers(0, 10**10),
    st.sampled_from(PAYEES),
    st.sampled_from(ACCOUNTS),
    st.booleans(),
    st.sampled_from([0, 8, -5]),
    st.tuples(  # branch, purpose code, age: what windows across customers filter on
        st.sampled_from(["B001", "B002", None]),
        st.sampled_from([None, "other", "family_support"]),
        st.sampled_from([None, 30, 60, 75]),
    ),
)

specs = st.builds(
    lambda agg, span, length, key, kinds, direction, channels, current, currency, extra: window(
        aggregate=agg,
        measure=(
            "customer"
            if agg == "count_distinct" and extra[0] and key in ("branch", "payee")
            else {"count_distinct": "counterparty", "count": "event"}.get(agg, "amount")
        ),
        span=span,
        length=length if span in ("hours", "days") else None,
        key=key,
        kinds=kinds,
        direction=direction,
        channels=channels,
        include_current=current,
        currency=currency,
        same_purpose=extra[1],
        min_customer_age=extra[2],
    ),
    st.sampled_from(["sum", "count", "max", "count_distinct"]),
    st.sampled_from(["same_day", "hours", "days", "since_account_opened"]),
    st.integers(1, 800),
    st.sampled_from(["customer", "account", "counterparty", "branch", "payee"]),
    st.lists(st.sampled_from(KINDS), max_size=3, unique=True),
    st.sampled_from([None, "in", "out", "none"]),
    st.lists(st.sampled_from(CHANNELS), max_size=2, unique=True),
    st.booleans(),
    st.sampled_from([None, "CNY", "USD"]),
    st.tuples(st.booleans(), st.booleans(), st.sampled_from([None, 60])),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    window_specs=st.lists(specs, min_size=1, max_size=6),
    history=st.lists(records, max_size=40, unique_by=lambda r: r.event_id),
    minutes=st.integers(-60 * 24, 60 * 24),
    kind=st.sampled_from(KINDS),
    payee=st.sampled_from(PAYEES),
    account=st.sampled_from(ACCOUNTS),
    timezone=st.sampled_from(ZONES),
    recorded_already=st.booleans(),
    amount=st.sampled_from(["0", "123.45", "50000"]),
    purpose=st.sampled_from(["", "for the family"]),
    birth=st.sampled_from([None, dt.date(1950, 6, 1), dt.date(1990, 6, 1)]),
    derived=st.booleans(),
)
def test_postgres_windows_equal_the_in_memory_windows(
    pg_history: PostgresHistoryStore,
    window_specs: list[Any],
    history: list[HistoryRecord],
    minutes: int,
    kind: TransactionKind,
    payee: str | None,
    account: str | None,
    timezone: str,
    recorded_already: bool,
    amount: str,
    purpose: str,
    birth: dt.date | None,
    derived: bool,
) -> None:
    """Every window shape, with and without the derived features (the statement reads other
    customers' rows on the account only when something needs them)."""
    event = make_event(
        "current",
        BASE + dt.timedelta(minutes=minutes),
        amount,
        kind=kind,
        payee=payee,
        account_id=account,
        timezone=timezone,
        opened_on=dt.date(2025, 2, 10),
        purpose_text=purpose,
        birth_date=birth,
    )
    if recorded_already:  # the event's own record is in history: counted once or not at all
        history = [*history, HistoryRecord.from_event(event)]
    memory = InMemoryHistoryStore()
    memory.record_many(history)
    _truncate(pg_history.url.url)
    pg_history.record_many(history)
    by_key = {f"window.w{index}": spec for index, spec in enumerate(window_specs)}
    expected = history_values(event, by_key, memory, derived=derived)
    assert history_values(event, by_key, pg_history, derived=derived) == expected


@pytest.mark.parametrize("payee", ["P1-0001", None])
def test_windows_that_read_their_own_rows_give_one_answer_with_history_present(
    pg_history: PostgresHistoryStore, payee: str | None
) -> None:
    """Windows keyed across customers read their own rows, and a payee window of an event
    with no payee is 0; with nothing else asked, the statement once returned one row per
    candidate record (a record at the event's instant made two) and the screening failed."""
    event = make_event("current", BASE + dt.timedelta(hours=3), "500", payee=payee)
    history = [
        HistoryRecord.from_event(make_event(f"h{i}", BASE + dt.timedelta(hours=i), "100"))
        for i in range(4)  # h3 at the very instant of the event
    ]
    memory = InMemoryHistoryStore()
    memory.record_many(history)
    _truncate(pg_history.url.url)
    pg_history.record_many(history)
    by_key = {
        "window.branch": window(
            aggregate="count",
            measure="event",
            span="days",
            length=1,
            key="branch",
            include_current=True,
        ),
        "window.payee": window(
            aggregate="sum", measure="amount", span="days", length=2, key="payee"
        ),
        "window.counterparty": window(
            aggregate="count", measure="event", span="days", length=2, key="counterparty"
        ),
    }
    expected = history_values(event, by_key, memory, derived=False)
    assert expected["window.branch"] == 5
    assert history_values(event, by_key, pg_history, derived=False) == expected


def _screening_mix(seed: int, count: int) -> list[Any]:
    """Events of every shape the statement depends on (account, payee, purpose or not), from
    few customers and payees so that windows fill up and rules fire."""
    rng = random.Random(seed)
    kinds = [
        TransactionKind.TRANSFER,
        TransactionKind.REMITTANCE,
        TransactionKind.CASH_WITHDRAWAL,
        TransactionKind.CASH_DEPOSIT,
        TransactionKind.INBOUND_TRANSFER,
    ]
    events = []
    for index in range(count):
        kind = rng.choice(kinds)
        event = make_event(
            f"m{seed}-{index}",
            BASE + dt.timedelta(minutes=7 * index),
            rng.choice(["800", "12000", "30000", "60000"]),
            kind=kind,
            customer_id=rng.choice(["C1", "C2", "C3", "C4"]),
            account_id=rng.choice(ACCOUNTS),
            opened_on=rng.choice([dt.date(2025, 2, 10), dt.date(2019, 1, 1)]),
            payee=rng.choice(PAYEES),
            payee_region=rng.choice([None, "CN-GD"]),
            birth_date=rng.choice([None, dt.date(1950, 6, 1), dt.date(1990, 6, 1)]),
            timezone=rng.choice(ZONES[:2]),
            purpose_text=rng.choice(["", "for the family"]),
        )
        if event.counterparty is not None and rng.random() < 0.5:
            payee = event.counterparty.model_copy(update={"same_name": False})
            event = event.model_copy(update={"counterparty": payee})
        events.append(event)
    return events


@pytest.mark.parametrize("seed", [1, 2])
def test_screenings_on_postgres_decide_as_in_memory(postgres_db_url: str, seed: int) -> None:
    """Whole screenings with the baseline pack: a PostgreSQL store is asked only for the
    windows of rules that can still fire, and each event shape has its own statement; the
    decisions (actions, hits and the values they quote) are those of the in-memory store."""
    pack = load_pack("rules/cn-baseline")
    memory = Guard(pack, history=InMemoryHistoryStore())
    store = open_history_store(postgres_db_url)
    postgres = Guard(pack, history=store)
    hits = 0
    try:
        for event in _screening_mix(seed, 160):
            expected = memory.screen(event).model_dump(exclude={"elapsed_us"})
            assert postgres.screen(event).model_dump(exclude={"elapsed_us"}) == expected
            hits += len(expected["hits"])
            memory.record_executed(event)
            postgres.record_executed(event)
    finally:
        store.close()
    assert hits > 20  # the mix makes rules fire, windows and derived features among them


def test_recording_is_idempotent_and_bulk_loads_match(postgres_db_url: str) -> None:
    store = open_history_store(postgres_db_url)
    event = make_event("e1", BASE, "30000", payee="P1-0001")
    rec = HistoryRecord.from_event(event)
    store.record(rec)
    store.record(rec)
    many = [
        HistoryRecord.from_event(make_event(f"b{i}", BASE + dt.timedelta(minutes=i), "1"))
        for i in range(200)
    ]
    store.record_many(many)  # large batch: goes through COPY
    store.record_many(many)
    assert len(store) == 201
    assert store.for_customer("C1", BASE + dt.timedelta(minutes=150))[0].event_id == "b150"
    assert [eid for _, eid in store.earliest_with_counterparty("C1", "P1-0001")] == ["e1"]
    store.close()


def test_retention_deletes_in_the_database_but_payees_are_remembered(
    postgres_db_url: str,
) -> None:
    store = open_history_store(postgres_db_url, retention=dt.timedelta(hours=30))
    old = make_event("old", BASE, "10", payee="P9-0009")
    store.record(HistoryRecord.from_event(old))
    later = BASE + dt.timedelta(days=3)
    store.record(HistoryRecord.from_event(make_event("new", later, "10")))
    too_old = make_event("late", BASE - dt.timedelta(days=1), "10")
    store.record(HistoryRecord.from_event(too_old))  # older than retention: not stored
    assert [r.event_id for r in store.for_customer("C1", None)] == ["new"]
    with psycopg.connect(postgres_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM guardrail_history").fetchone() == (1,)
    again = make_event("again", later, "10", payee="P9-0009")
    values = history_values(again, {}, store)
    assert values["counterparty.first_seen"] is False
    store.close()


def test_a_screening_is_one_round_trip_whatever_the_windows(postgres_db_url: str) -> None:
    pack = load_pack("rules/cn-baseline")
    store = open_history_store(postgres_db_url)
    assert isinstance(store, PostgresHistoryStore)
    guard = Guard(pack, history=store)
    for index in range(5):
        event = make_event(
            f"t{index}",
            BASE + dt.timedelta(hours=index),
            "3000",
            kind=TransactionKind.TRANSFER,
            payee="P1-0001",
        )
        before = store.round_trips
        decision = guard.screen(event)
        assert not decision.failures
        assert store.round_trips - before == 1
        guard.record_executed(event)
    store.close()


def test_a_schema_newer_than_the_code_is_refused(postgres_db_url: str) -> None:
    open_history_store(postgres_db_url).close()
    with psycopg.connect(postgres_db_url, autocommit=True) as conn:
        conn.execute("UPDATE guardrail_schema SET version = 99 WHERE component = 'history'")
    with pytest.raises(SchemaTooNew, match=r"history schema is at version 99.*upgrade guardrail"):
        open_history_store(postgres_db_url)


def test_screening_fails_closed_within_budget_when_the_store_goes_down() -> None:
    server = start_private_server()
    try:
        guard = guard_from_path("rules/cn-baseline", history=server.url, timeout_s=2)
        transfer = make_event("x1", BASE, "60000", kind=TransactionKind.TRANSFER, payee="P1-0001")
        assert not guard.screen(transfer).failures
        server.stop()
        started = time.monotonic()
        decision = guard.screen(transfer)
        elapsed = time.monotonic() - started
        assert decision.action >= Action.REVIEW
        assert decision.failures
        failure = decision.failures[0]
        assert failure.error_type == "StoreError"
        assert "history store postgresql://postgres@127.0.0.1" in failure.message
        assert elapsed < 20, elapsed
        with pytest.raises(StoreError, match="cannot record history"):
            guard.record_executed(transfer)
        guard.history.close()
    finally:
        server.destroy()


def test_a_read_blocked_in_the_database_fails_closed_within_the_budget(
    postgres_db_url: str,
) -> None:
    """A read stuck behind a lock (a migration, a stuck writer) is aborted by the store itself
    after the budget, well before the 5 s statement timeout, with no thread hop per read; the
    broken connection leaves the pool and the next screening works."""
    store = open_history_store(postgres_db_url)
    guard = Guard(load_pack("rules/cn-baseline"), history=store, history_budget_s=0.3)
    assert guard.history is store  # bounded in the reading thread, not wrapped
    transfer = make_event("b1", BASE, "60000", kind=TransactionKind.TRANSFER, payee="P1-0001")
    assert not guard.screen(transfer).failures
    with psycopg.connect(postgres_db_url) as locker:  # holds the lock until the block ends
        locker.execute("LOCK TABLE guardrail_history IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        decision = guard.screen(transfer)
        elapsed = time.monotonic() - started
    assert decision.action >= Action.REVIEW
    assert [f.error_type for f in decision.failures] == ["HistoryTimeout"]
    assert "history store postgresql://postgres@127.0.0.1" in decision.failures[0].message
    assert "did not answer the windows within 300 ms" in decision.failures[0].message
    assert elapsed < 3, elapsed
    assert not guard.screen(transfer).failures
    store.close()


def test_a_unix_socket_url_reaches_the_same_server() -> None:
    """postgresql://user@/db?host=/socket/dir: the same store, without TCP."""
    server = start_private_server()
    try:
        tcp = create_database(server.url)
        name = tcp.rpartition("/")[2]
        by_socket = with_database(server.socket_url, name)
        assert "127.0.0.1" not in by_socket
        event = make_event("s1", BASE, "30000", kind=TransactionKind.CASH_WITHDRAWAL)
        writer = open_history_store(by_socket)
        writer.record(HistoryRecord.from_event(event))
        writer.close()
        reader = open_history_store(tcp)
        assert [r.event_id for r in reader.for_customer(event.customer.id, None)] == ["s1"]
        reader.close()
    finally:
        server.destroy()


def test_direction_enum_values_match_the_sql() -> None:
    assert Direction.IN.value == "in" and Direction.OUT.value == "out"
