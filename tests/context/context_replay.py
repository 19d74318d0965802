"""Replay a JSONL history through a history store; also runnable as a fresh process.

``python context_replay.py DB JSONL OUT START STOP RETAIN`` replays events ``[START:STOP]`` of
``JSONL`` into the SQLite file ``DB`` (bounded by the windows' retention when RETAIN is ``yes``)
and writes the computed values to ``OUT`` as JSON, so a test can compare a restarted process with
a live run.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
from decimal import Decimal
from pathlib import Path

from guardrail.context import (
    HistoryRecord,
    HistoryStore,
    SQLiteHistoryStore,
    compute_window,
    derived_history_features,
    retention_for,
)
from guardrail.lang.declarations import WindowSpec
from guardrail.model.event import (
    Account,
    Branch,
    Channel,
    Counterparty,
    Customer,
    Event,
    TransactionKind,
)
from guardrail.model.money import Money

WINDOWS = [
    WindowSpec.model_validate(fields, strict=False)
    for fields in [
        {"name": "cash_out_today", "aggregate": "sum", "span": "same_day",
         "kinds": ["cash_withdrawal"], "direction": "out"},
        {"name": "out_count_6h", "aggregate": "count", "measure": "event", "span": "hours",
         "length": 6, "direction": "out", "include_current": False},
        {"name": "max_3d_account", "aggregate": "max", "span": "days", "length": 3,
         "key": "account"},
        {"name": "payees_2d", "aggregate": "count_distinct", "measure": "counterparty",
         "span": "days", "length": 2, "channels": ["counter", "mobile"]},
        {"name": "same_payee_today", "aggregate": "sum", "span": "same_day",
         "key": "counterparty"},
    ]
]  # fmt: skip


def synthetic_events(count: int = 200, seed: int = 20250301) -> list[Event]:
    """``count`` events in time order over about five days, a few customers, many collisions."""
    rng = random.Random(seed)
    zones = ["Asia/Shanghai", "Asia/Shanghai", "Asia/Urumqi", "Europe/London"]
    offsets = [dt.timezone(dt.timedelta(hours=h)) for h in (8, 0, -5)]
    when = dt.datetime(2025, 2, 26, 20, 0, tzinfo=dt.UTC)
    events = []
    for i in range(count):
        when += dt.timedelta(minutes=rng.randrange(0, 70))
        customer = rng.randrange(8)
        kind = rng.choice(list(TransactionKind))
        payee = rng.choice([None, "6222333300000001", "6222333300000002", "6222333300000003"])
        events.append(
            Event(
                event_id=f"ev{i:04d}",
                kind=kind,
                amount=Money(value=Decimal(rng.randrange(0, 6_000_000)) / 100),
                channel=rng.choice(list(Channel)),
                timestamp=when.astimezone(rng.choice(offsets)),
                branch=Branch(id="B1", region="CN-ZJ", timezone=zones[customer % len(zones)]),
                teller_id="T1",
                customer=Customer(id=f"C{customer}"),
                account=Account(
                    id=f"62170000{customer:04d}{rng.randrange(2)}",
                    opened_on=dt.date(2025, 2, 20 + customer),
                ),
                counterparty=None if payee is None else Counterparty(account=payee),
            )
        )
    return events


def write_jsonl(events: list[Event], path: Path) -> None:
    path.write_text("".join(event.model_dump_json() + "\n" for event in events), encoding="utf-8")


def read_jsonl(path: Path) -> list[Event]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Event.model_validate_json(line) for line in lines if line.strip()]


def replay(events: list[Event], store: HistoryStore) -> list[dict[str, object]]:
    """Screen each event (windows and derived features as of it), then record it as executed."""
    results: list[dict[str, object]] = []
    for event in events:
        values: dict[str, object] = {"event_id": event.event_id}
        values.update({spec.name: compute_window(spec, event, store) for spec in WINDOWS})
        values.update(derived_history_features(event, store))
        results.append(values)
        store.record(HistoryRecord.from_event(event))
    return results


def main(argv: list[str]) -> int:
    db, jsonl, out, start, stop, retain = argv
    store = SQLiteHistoryStore(db, retention_for(WINDOWS) if retain == "yes" else None)
    try:
        results = replay(read_jsonl(Path(jsonl))[int(start) : int(stop)], store)
        Path(out).write_text(json.dumps({"records": len(store), "results": results}))
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
