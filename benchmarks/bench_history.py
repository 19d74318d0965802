"""History benchmark: 1,000,000 executed records for ~20,000 customers, in memory and in SQLite.

Measures load time, process memory (RSS) before and after the in-memory load, and the cost per
screened event of the pack's windows plus the derived history features. Prints, asserts nothing.

    .venv/bin/python benchmarks/bench_history.py [--records N] [--customers N] [--events N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import islice
from pathlib import Path

from guardrail.context import (
    HistoryRecord,
    HistoryStore,
    InMemoryHistoryStore,
    SQLiteHistoryStore,
    compute_window,
    derived_history_features,
    retention_for,
)
from guardrail.lang.declarations import WindowSpec
from guardrail.model.event import (
    DIRECTION_OF_KIND,
    Account,
    Branch,
    Channel,
    Counterparty,
    Customer,
    Event,
    TransactionKind,
)
from guardrail.model.money import Money

NOW = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SPAN = dt.timedelta(days=30)
KINDS = [
    TransactionKind.CASH_WITHDRAWAL,
    TransactionKind.CASH_DEPOSIT,
    TransactionKind.TRANSFER,
    TransactionKind.REMITTANCE,
]
CHANNELS = list(Channel)

WINDOWS = [
    WindowSpec.model_validate(fields, strict=False)
    for fields in [
        {"name": "cash_out_today", "aggregate": "sum", "span": "same_day",
         "kinds": ["cash_withdrawal"], "direction": "out"},
        {"name": "out_count_24h", "aggregate": "count", "measure": "event", "span": "hours",
         "length": 24, "direction": "out"},
        {"name": "out_sum_7d_account", "aggregate": "sum", "span": "days", "length": 7,
         "key": "account", "direction": "out"},
        {"name": "payees_30d", "aggregate": "count_distinct", "measure": "counterparty",
         "span": "days", "length": 30},
    ]
]  # fmt: skip


def account_of(customer: int, which: int) -> str:
    return f"6217{customer:08d}{which}"


def payee_of(customer: int, which: int) -> str:
    return f"6222{(customer * 7 + which) % 500_000:08d}"


def synthetic_records(count: int, customers: int, seed: int = 1) -> Iterator[HistoryRecord]:
    """``count`` records spread over the 30 days before NOW, in time order."""
    rng = random.Random(seed)
    step = SPAN / count
    start = NOW - SPAN
    for i in range(count):
        customer = rng.randrange(customers)
        kind = rng.choice(KINDS)
        payee = None if kind is TransactionKind.CASH_WITHDRAWAL else rng.randrange(6)
        yield HistoryRecord(
            event_id=f"h{i:08d}",
            customer_id=sys.intern(f"C{customer:06d}"),
            account_id=sys.intern(account_of(customer, rng.randrange(2))),
            kind=kind,
            direction=DIRECTION_OF_KIND[kind],
            channel=rng.choice(CHANNELS),
            amount_fen=rng.randrange(100, 5_000_000),
            timestamp=start + step * i,
            counterparty_account=None if payee is None else sys.intern(payee_of(customer, payee)),
        )


def screening_events(count: int, customers: int, seed: int = 2) -> list[Event]:
    rng = random.Random(seed)
    branch = Branch(id="B001", region="CN-ZJ")
    events = []
    for i in range(count):
        customer = rng.randrange(customers)
        events.append(
            Event(
                event_id=f"s{i:06d}",
                kind=TransactionKind.TRANSFER,
                amount=Money(value=Decimal(rng.randrange(100, 100_000))),
                timestamp=NOW + dt.timedelta(seconds=i),
                branch=branch,
                teller_id="T01",
                customer=Customer(id=f"C{customer:06d}"),
                account=Account(id=account_of(customer, 0), opened_on=dt.date(2024, 1, 1)),
                counterparty=Counterparty(account=payee_of(customer, rng.randrange(8))),
            )
        )
    return events


def rss_mib() -> float:
    """Current resident set size in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(
    store: InMemoryHistoryStore | SQLiteHistoryStore, records: Iterator[HistoryRecord]
) -> float:
    started = time.perf_counter()
    while batch := list(islice(records, 10_000)):
        store.record_many(batch)
    return time.perf_counter() - started


def screen(events: list[Event], store: HistoryStore) -> list[float]:
    """Microseconds per event for all windows plus the derived history features."""
    timings = []
    clock = time.perf_counter_ns
    for event in events:
        started = clock()
        for spec in WINDOWS:
            compute_window(spec, event, store)
        derived_history_features(event, store)
        timings.append((clock() - started) / 1000)
    return timings


def report(name: str, timings: list[float]) -> None:
    ordered = sorted(timings)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    total = sum(ordered) / 1e6
    print(
        f"  {name:<10} {len(ordered):>6} events  {len(ordered) / total:>9.0f} events/s"
        f"  p50 {p50:>8.1f} µs  p99 {p99:>8.1f} µs  ({len(WINDOWS)} windows + derived)"
    )


def timed(label: str, action: Callable[[], float]) -> float:
    seconds = action()
    print(f"  {label}: {seconds:.1f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=5_000)
    args = parser.parse_args()
    retention = retention_for(WINDOWS)
    print(
        f"history benchmark: {args.records:,} records, {args.customers:,} customers, "
        f"30 days, retention {retention}; python {sys.version.split()[0]}"
    )
    events = screening_events(args.events, args.customers)

    gc.collect()
    before = rss_mib()
    memory = InMemoryHistoryStore(retention)
    print("in-memory store")
    timed(
        "load",
        lambda: load(memory, synthetic_records(args.records, args.customers)),
    )
    gc.collect()
    after = rss_mib()
    print(
        f"  RSS before {before:.0f} MiB, after {after:.0f} MiB: "
        f"{after - before:.0f} MiB for {len(memory):,} records "
        f"({(after - before) * 1024 * 1024 / max(len(memory), 1):.0f} bytes/record)"
    )
    screen(events[:200], memory)  # warm caches (zoneinfo, allocator)
    report("in-memory", screen(events, memory))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.db"
        print(f"SQLite store ({path.name}, WAL)")
        sqlite = SQLiteHistoryStore(path, retention)
        timed("load", lambda: load(sqlite, synthetic_records(args.records, args.customers)))
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1024 / 1024
        print(f"  {len(sqlite):,} records, {size:.0f} MiB on disk, RSS now {rss_mib():.0f} MiB")
        sqlite.close()
        started = time.perf_counter()
        sqlite = SQLiteHistoryStore(path, retention)
        print(f"  reopen: {(time.perf_counter() - started) * 1000:.1f} ms")
        screen(events[:200], sqlite)
        report("sqlite", screen(events, sqlite))
        sqlite.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
