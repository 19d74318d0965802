"""Store benchmark: screen() with 1,000,000 history records in PostgreSQL vs in memory vs
SQLite, and audit appends/s on PostgreSQL with 1, 4 and 16 concurrent writer processes.

Every store holds the same records (no retention, so all of them stay); the same events are
screened with the baseline pack through ``Guard.screen()``, each event on every store in turn
(interleaved, so all stores see the same machine load). Round trips are store requests
per screening (PostgreSQL: statements sent; memory and SQLite: record reads). Prints figures and
the issue's target ("within 3x of in-memory on p50"); asserts nothing.

    .venv/bin/python benchmarks/bench_stores.py [--records N] [--customers N] [--events N]
        [--postgres URL] [--postgres-socket URL] [--audit-seconds S]

PostgreSQL is measured twice, over TCP and over a Unix-domain socket
(``postgresql://user@/db?host=/socket/dir``), on the same database. Without ``--postgres`` (or
$GUARDRAIL_BENCH_POSTGRES_URL) a throwaway server is started with initdb/pg_ctl as for the
tests (tests/postgres_server.py) and removed afterwards; with it, ``--postgres-socket`` gives
the socket form of the same database (omitted: TCP only).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench_history import screening_events, synthetic_records  # noqa: E402

from guardrail.audit import AuditKeys  # noqa: E402
from guardrail.context import HistoryRecord, InMemoryHistoryStore, SQLiteHistoryStore  # noqa: E402
from guardrail.guard import Guard  # noqa: E402
from guardrail.lang.loader import load_pack  # noqa: E402
from guardrail.model.event import Event  # noqa: E402
from guardrail.stores import open_audit_log, open_history_store  # noqa: E402
from guardrail.stores.postgres.history import PostgresHistoryStore  # noqa: E402

PACK = HERE.parent / "rules" / "cn-baseline"
TARGET_RATIO = 3.0


class CountingStore:
    """Delegates to a record-reading store and counts its reads (round trips)."""

    def __init__(self, inner: InMemoryHistoryStore | SQLiteHistoryStore) -> None:
        self.inner = inner
        self.round_trips = 0
        # in memory: no time-budget thread hop, as the Guard treats the bare in-memory store
        self.reads_never_block = isinstance(inner, InMemoryHistoryStore)

    def for_branch(self, branch_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        self.round_trips += 1
        return self.inner.for_branch(branch_id, since)

    def for_counterparty(
        self, counterparty_account: str, since: datetime | None
    ) -> Sequence[HistoryRecord]:
        self.round_trips += 1
        return self.inner.for_counterparty(counterparty_account, since)

    def record(self, rec: HistoryRecord) -> None:
        self.inner.record(rec)

    def for_customer(self, customer_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        self.round_trips += 1
        return self.inner.for_customer(customer_id, since)

    def for_account(self, account_id: str, since: datetime | None) -> Sequence[HistoryRecord]:
        self.round_trips += 1
        return self.inner.for_account(account_id, since)

    def earliest_with_counterparty(
        self, customer_id: str, counterparty_account: str
    ) -> Sequence[tuple[datetime, str]]:
        self.round_trips += 1
        return self.inner.earliest_with_counterparty(customer_id, counterparty_account)

    def evict_before(self, cutoff: datetime) -> int:
        return self.inner.evict_before(cutoff)

    def close(self) -> None:
        self.inner.close()

    def __len__(self) -> int:
        return len(self.inner)


def load(store: Any, records: Iterator[HistoryRecord], batch: int) -> float:
    started = time.perf_counter()
    while chunk := list(islice(records, batch)):
        store.record_many(chunk)
    return time.perf_counter() - started


class Result:
    def __init__(self, name: str, timings_us: list[float], round_trips: float) -> None:
        self.name = name
        self.timings = sorted(timings_us)
        self.round_trips = round_trips

    @property
    def p50(self) -> float:
        return statistics.median(self.timings)

    @property
    def p99(self) -> float:
        return self.timings[min(len(self.timings) - 1, int(len(self.timings) * 0.99))]

    @property
    def per_s(self) -> float:
        return len(self.timings) / (sum(self.timings) / 1e6)


def show(result: Result) -> Result:
    print(
        f"  screen() {result.name:<11} {result.per_s:>7.0f} screens/s  p50 {result.p50:>8.1f} µs"
        f"  p99 {result.p99:>8.1f} µs  {result.round_trips:.2f} round trips/screening",
        flush=True,
    )
    return result


def screen_interleaved(
    contenders: list[tuple[str, Guard, Any]], events: list[Event]
) -> list[Result]:
    """Each event screened by every contender in turn (the order rotating per event)."""
    for _, guard, _ in contenders:
        for event in events[:200]:  # warm up: caches, prepared statements, buffers
            guard.screen(event)
    before = [counter.round_trips for _, _, counter in contenders]
    timings: list[list[float]] = [[] for _ in contenders]
    clock = time.perf_counter_ns
    count = len(contenders)
    for index, event in enumerate(events):
        for step in range(count):
            which = (index + step) % count
            name, guard, _ = contenders[which]
            started = clock()
            decision = guard.screen(event)
            timings[which].append((clock() - started) / 1000)
            if decision.failures:
                raise SystemExit(f"{name}: screening failed: {decision.failures[0].message}")
    return [
        show(Result(name, timings[i], (counter.round_trips - before[i]) / len(events)))
        for i, (name, _, counter) in enumerate(contenders)
    ]


def _load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: the ratios below are measured in one
    run, but how loaded the machine was says how far the absolute figures can be trusted."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


def _select_one_us(url: str) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True, prepare_threshold=0) as conn:
        timings = []
        for _ in range(2000):
            started = time.perf_counter_ns()
            conn.execute("SELECT 1").fetchone()
            timings.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(timings)


def floor_report(url: str, socket_url: str | None) -> str:
    """p50 of a bare prepared ``SELECT 1``: what one round trip costs here, whatever the query."""
    text = f"SELECT 1 p50 {_select_one_us(url):.0f} µs over TCP"
    if socket_url:
        text += f", {_select_one_us(socket_url):.0f} µs over the socket"
    return text


def _writer(url: str, seconds: float, ready: Any, go: Any, queue: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = AuditKeys.insecure_development_keys()
    log = open_audit_log(url, keys)
    events = screening_events(50, 1000, seed=os.getpid())
    guard = Guard(load_pack(PACK))
    records = [log.decision_record(e, guard.screen(e), case_id=e.event_id) for e in events]
    ready.release()
    go.wait(timeout=300)
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        log.append([records[count % len(records)]])
        count += 1
    log.close()
    queue.put(count)


def audit_appends(url: str, writers: int, seconds: float) -> float:
    """Appends per second by ``writers`` processes, each with its own AuditLog and pool,
    started together once every one of them is connected and ready."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    ready = context.Semaphore(0)
    go = context.Event()
    procs = [
        context.Process(target=_writer, args=(url, seconds, ready, go, queue))
        for _ in range(writers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        if not ready.acquire(timeout=300):
            raise SystemExit("audit writers did not start")
    go.set()
    total = sum(queue.get(timeout=300) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=3_000)
    parser.add_argument("--postgres", default=os.environ.get("GUARDRAIL_BENCH_POSTGRES_URL"))
    parser.add_argument("--postgres-socket", default=None)
    parser.add_argument("--audit-seconds", type=float, default=5.0)
    args = parser.parse_args()

    server = None
    url = args.postgres
    socket_url = args.postgres_socket
    if url is None:
        from postgres_server import PostgresServer, create_database, with_database

        server = PostgresServer()
        server.start()
        url = create_database(server.url)
        socket_url = with_database(server.socket_url, url.rpartition("/")[2])
    print(
        f"store benchmark: {args.records:,} history records, {args.customers:,} customers, "
        f"{args.events:,} screenings with rules/cn-baseline; python {sys.version.split()[0]}"
    )
    try:
        run(args, url, socket_url)
    finally:
        if server is not None:
            server.destroy()


def run(args: argparse.Namespace, url: str, socket_url: str | None) -> None:
    pack = load_pack(PACK)
    events = screening_events(args.events, args.customers)
    results: list[Result] = []

    # Every store is loaded first and the screenings are interleaved (each event on each
    # store in turn, the order rotating): on a shared machine the load changes by the minute,
    # and stores measured minutes apart would be compared under different loads.
    memory = InMemoryHistoryStore()
    seconds = load(memory, synthetic_records(args.records, args.customers), 10_000)
    print(f"  load in-memory   {seconds:7.1f} s", flush=True)
    tmp = tempfile.TemporaryDirectory()
    sqlite = SQLiteHistoryStore(Path(tmp.name) / "history.db")
    seconds = load(sqlite, synthetic_records(args.records, args.customers), 10_000)
    print(f"  load SQLite      {seconds:7.1f} s", flush=True)
    postgres = open_history_store(url)
    assert isinstance(postgres, PostgresHistoryStore)
    seconds = load(postgres, synthetic_records(args.records, args.customers), 20_000)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # statistics, and the visibility map index-only scans use
    print(f"  load PostgreSQL  {seconds:7.1f} s (COPY, then VACUUM ANALYZE)", flush=True)
    print(f"  PostgreSQL holds {len(postgres):,} records")
    postgres.close()

    counting = CountingStore(memory)
    counting_sqlite = CountingStore(sqlite)
    contenders: list[tuple[str, Guard, Any]] = [
        ("in-memory", Guard(pack, history=counting), counting),
        ("SQLite", Guard(pack, history=counting_sqlite), counting_sqlite),
    ]
    links = [("PG TCP", url)] + ([("PG socket", socket_url)] if socket_url else [])
    stores: list[PostgresHistoryStore] = []
    for name, link in links:
        store = open_history_store(link)
        assert isinstance(store, PostgresHistoryStore)
        stores.append(store)
        contenders.append((name, Guard(pack, history=store), store))
    print(f"  load average before screening: {_load_average()}", flush=True)
    results = screen_interleaved(contenders, events)
    print(f"  load average after screening:  {_load_average()}", flush=True)
    for store in stores:
        store.close()
    sqlite.close()
    tmp.cleanup()

    print(f"\nscreen() with {args.records:,} records in the history store")
    print(f"  {'store':<11} {'screens/s':>10} {'p50 µs':>9} {'p99 µs':>9} {'round trips':>12}")
    for result in results:
        print(
            f"  {result.name:<11} {result.per_s:>10.0f} {result.p50:>9.1f} {result.p99:>9.1f}"
            f" {result.round_trips:>12.2f}"
        )
    base = results[0]
    for result in results[1:]:
        print(
            f"  {result.name} / in-memory: p50 x{result.p50 / base.p50:.2f}, "
            f"p99 x{result.p99 / base.p99:.2f}"
        )
    for result in results[2:]:
        ratio = result.p50 / base.p50
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(
            f"  target: {result.name} screen() p50 within {TARGET_RATIO:g}x of in-memory: "
            f"{verdict} (x{ratio:.2f})"
        )
    print(f"  one round trip floor: {floor_report(url, socket_url)}")

    print(f"\naudit appends/s on PostgreSQL ({args.audit_seconds:g} s each, 1 record per append)")
    for writers in (1, 4, 16):
        rate = audit_appends(url, writers, args.audit_seconds)
        print(f"  {writers:>2} writer processes: {rate:8.0f} appends/s")


if __name__ == "__main__":
    main()
