"""Audit log throughput with durable commits (WAL, synchronous=FULL).

Run: ``.venv/bin/python benchmarks/bench_audit.py [--records N]``. Prints appended records/s
for single-record transactions and for batches of 100, plus verify and report speed.
Figures are printed, not asserted: they depend on the disk's fsync latency.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

from guardrail.audit import AuditKeys, AuditLog, build_report, read_records
from guardrail.model import Action, Decision, Event, Evidence, Hit, PackRef

PACK = PackRef(name="cn-baseline", version="1.0.0", content_hash="sha256:" + "ab" * 32)


def _event(i: int) -> Event:
    when = dt.datetime(2025, 3, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    data = {
        "event_id": f"E{i:08d}",
        "kind": "cash_withdrawal",
        "amount": {"value": f"{50000 + i % 1000}.00"},
        "timestamp": (when + dt.timedelta(seconds=i)).isoformat(),
        "branch": {"id": f"B{i % 7:03d}", "region": "CN-ZJ"},
        "teller_id": f"T{i % 11:02d}",
        "customer": {
            "id": f"C{i:08d}",
            "birth_date": "1950-01-01",
            "name": "张伟",
            "id_number": f"1101011950{i % 100000000:08d}",
            "phone": f"138{i % 100000000:08d}",
        },
        "account": {"id": f"62220202{i:011d}", "opened_on": "2020-01-01"},
        "counterparty": {"account": "6217000010012345678", "name": "李娜"},
        "notes": "customer on the phone, says safe account",
    }
    return Event.model_validate_json(json.dumps(data))


def _decision(event: Event) -> Decision:
    hit = Hit(
        rule_id="R_SAFE_ACCOUNT",
        title_zh="安全账户",
        title_en="safe account",
        action=Action.INTERCEPT,
        evidence=(Evidence(feature="event.amount_fen", value=event.amount.fen),),
    )
    return Decision(
        event_id=event.event_id, action=Action.INTERCEPT, hits=(hit,), pack=PACK, backend="bench"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2000, help="records per measurement")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the log files")
    args = parser.parse_args()
    n = args.records
    keys = AuditKeys.from_secret(b"benchmark-secret-key-0123456789ab")
    events = [_event(i) for i in range(n)]
    pairs = [(e, _decision(e)) for e in events]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.db"
        with AuditLog.open(path, keys=keys) as log:
            started = time.perf_counter()
            records = [log.decision_record(e, d) for e, d in pairs]
            build = time.perf_counter() - started
            print(f"protect+build records:          {n / build:>10,.0f} records/s (no I/O)")

            started = time.perf_counter()
            for event, decision in pairs:
                log.log_decision(event, decision)
            single = time.perf_counter() - started
            print(f"append, 1 record/transaction:   {n / single:>10,.0f} records/s (durable)")

            started = time.perf_counter()
            for i in range(0, n, 100):
                log.append(records[i : i + 100])
            batched = time.perf_counter() - started
            print(f"append, 100 records/transaction:{n / batched:>10,.0f} records/s (durable)")

            started = time.perf_counter()
            report = log.verify()
            elapsed = time.perf_counter() - started
            assert report.ok, report.problem
            print(f"verify:                         {report.records / elapsed:>10,.0f} records/s")
        started = time.perf_counter()
        summary = build_report(read_records(path), by="branch")
        elapsed = time.perf_counter() - started
        print(f"report (parse + aggregate):     {summary.records_read / elapsed:>10,.0f} records/s")
        print(f"log size: {path.stat().st_size / (2 * n):,.0f} bytes/record")


if __name__ == "__main__":
    main()
