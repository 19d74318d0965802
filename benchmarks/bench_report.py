"""Report speed: SQL aggregation over the report index versus parsing every record.

Run: ``.venv/bin/python benchmarks/bench_report.py [--records 1000000] [--dir /tmp]``.

Builds a chained, signed audit log of ``--records`` records in a temporary folder (never in the
repository): requests (a decision and its outcome), some with a counter session's steps, cases
with ledger entries and verdicts. Payloads are real canonical records made once with the
pydantic models and varied by substitution; they are sealed by the log's own ``Sealer`` and
appended in batches of 10,000 (the chained one-record API would take hours for 1M).

Prints records/s for: indexing new records (once per record, incremental afterwards); each
report on the indexed log; a cold report (index from scratch + aggregation); and, as the peer
measured in the same run, the record-parsing ``build_report`` on a sample. The issue's target,
200,000 records/s for SQL aggregation, is printed as met / NOT met for every grouping, on
SQLite and on a throwaway PostgreSQL server (tests/postgres_server.py; ``--no-postgres`` skips).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import tempfile
import time
from decimal import Decimal
from itertools import islice
from pathlib import Path

from guardrail.audit import AuditKeys, AuditLog, build_report, read_records
from guardrail.audit.chain import Sealer, Unsealed, utc_timestamp
from guardrail.audit.period_report import sqlite_report
from guardrail.audit.records import CaseEntryKind, CaseType, Verdict, encode_payload
from guardrail.audit.sqlite_store import SQLiteStore
from guardrail.cases import CaseLedger, EvidenceStore
from guardrail.model import Action, Decision, Event, Evidence, Hit, PackRef
from guardrail.model.session import SessionStep

TARGET = 200_000
GROUPINGS = ("", "day", "week", "month", "quarter", "month,branch", "week,branch", "branch,rule")
PACK = PackRef(name="cn-baseline", version="1.0.0", content_hash="sha256:" + "ab" * 32)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2025, 1, 1, 9, tzinfo=SHANGHAI)
RULES = ["elderly-large-cash", "safe-account", "mule-fast-in-out", "reg-large-cash", "on-phone"]
KINDS = ["cash_withdrawal", "transfer", "remittance", "cash_deposit"]
MARK_TS, MARK_ID, MARK_FEN = "2020-02-02T02:02:02+08:00", "EVTMARK", 987654321


def _event() -> Event:
    return Event.model_validate_json(
        json.dumps(
            {
                "event_id": MARK_ID,
                "kind": "cash_withdrawal",
                "amount": {"value": str(Decimal(MARK_FEN) / 100)},
                "timestamp": MARK_TS,
                "branch": {"id": "BRMARK", "region": "CN-ZJ"},
                "teller_id": "TLMARK",
                "customer": {
                    "id": "C0001",
                    "birth_date": "1950-01-01",
                    "name": "张伟",
                    "id_number": "110101195001011234",
                    "phone": "13800138000",
                },
                "account": {"id": "6222020200112233445", "opened_on": "2020-01-01"},
                "counterparty": {"account": "6217000010012345678", "name": "李娜"},
                "notes": "on the phone",
            }
        )
    )


def _templates(log: AuditLog) -> dict[str, str]:
    """Canonical payload texts with marker values to substitute."""
    event = _event()
    out: dict[str, str] = {}
    for action, rules in (
        (Action.PROCEED, ()),
        (Action.INQUIRE, ("RULEA",)),
        (Action.INTERCEPT, ("RULEA", "RULEB")),
    ):
        hits = tuple(
            Hit(
                rule_id=r,
                title_zh="规则",
                title_en=r,
                action=action,
                evidence=(Evidence(feature="event.amount_fen", value=MARK_FEN),),
            )
            for r in rules
        )
        decision = Decision(
            event_id=MARK_ID, action=action, hits=hits, pack=PACK, backend="reference"
        )
        out[action.value] = encode_payload(log.decision_record(event, decision)).decode()
    for outcome in ("executed", "intercepted", "withdrawn_after_dissuasion"):
        step = log.session_step_record(
            SessionStep(
                case_id=MARK_ID,
                kind="outcome_recorded",
                at=event.timestamp,
                teller_id="TLMARK",
                outcome=outcome,
                amount=event.amount,
            )
        )
        out[outcome] = encode_payload(step).decode()
    for kind in ("questions_asked", "notice_delivered"):
        step = log.session_step_record(
            SessionStep(case_id=MARK_ID, kind=kind, at=event.timestamp, teller_id="TLMARK")
        )
        out[kind] = encode_payload(step).decode()
    ledger = CaseLedger(log, EvidenceStore(Path(tempfile.gettempdir())))
    at = event.timestamp
    out["opened"] = encode_payload(
        ledger.build_entry(
            MARK_ID,
            CaseEntryKind.OPENED,
            at,
            "HQ",
            case_type=CaseType.DECISION,
            source_case_id=MARK_ID,
            branch_id="BRMARK",
            typology="impersonation_police",
            amount_at_risk=event.amount,
        )
    ).decode()
    out["verdict"] = encode_payload(
        ledger.build_entry(
            MARK_ID, CaseEntryKind.VERDICT, at, "PSB", verdict=Verdict.FRAUD_CONFIRMED
        )
    ).decode()
    out["closed"] = encode_payload(
        ledger.build_entry(
            MARK_ID,
            CaseEntryKind.CLOSED,
            at,
            "CO01",
            resolution="fraud_prevented",
            amount_prevented=event.amount,
            reported_to_police=True,
        )
    ).decode()
    return out


def _records(templates: dict[str, str], rng: random.Random):  # type: ignore[no-untyped-def]
    """Endless (kind, case_id, payload) in event order."""
    index = 0
    moment = T0
    while True:
        index += 1
        moment += dt.timedelta(seconds=rng.randint(1, 40))
        case = f"E{index:09d}"
        fen = rng.randint(100, 30_000_000)
        ts = moment.isoformat()
        branch = f"BR{rng.randrange(40):03d}"

        def fill(
            text: str, *, case: str = case, fen: int = fen, ts: str = ts, branch: str = branch
        ) -> str:
            return (
                text.replace(MARK_ID, case)
                .replace(MARK_TS, ts)
                .replace(str(MARK_FEN), str(fen))
                .replace(str(Decimal(MARK_FEN) / 100), str(Decimal(fen) / 100))
                .replace("BRMARK", branch)
                .replace("TLMARK", branch + "-T1")
                .replace("RULEA", rng.choice(RULES))
                .replace("RULEB", rng.choice(RULES))
                .replace('"cash_withdrawal"', f'"{rng.choice(KINDS)}"')
            )

        roll = rng.random()
        if roll < 0.9:
            yield "decision", case, fill(templates["proceed"])
            yield "session_step", case, fill(templates["executed"])
            continue
        action = "inquire" if roll < 0.98 else "intercept"
        yield "decision", case, fill(templates[action])
        yield "session_step", case, fill(templates["questions_asked"])
        yield "session_step", case, fill(templates["notice_delivered"])
        stopped = action == "intercept" or rng.random() < 0.2
        yield "session_step", case, fill(templates["intercepted" if stopped else "executed"])
        if action == "intercept":
            yield "case_entry", case, fill(templates["opened"])
            if rng.random() < 0.7:
                yield "case_entry", case, fill(templates["verdict"])
            yield "case_entry", case, fill(templates["closed"])


def build_log(path: Path | str, n: int, keys: AuditKeys) -> float:
    """Write ``n`` sealed records in batches (a SQLite path or a store URL); returns seconds."""
    from guardrail.stores import open_audit_store

    started = time.perf_counter()
    with AuditLog(open_audit_store(path), keys) as log:
        templates = _templates(log)
        sealer = Sealer(keys.signing, log.meta)
    store = SQLiteStore(path) if isinstance(path, Path) else open_audit_store(path)
    head = store.head()
    assert head is not None
    stream = _records(templates, random.Random(20250101))
    written = 0
    while written < n:
        chunk = list(islice(stream, min(10_000, n - written)))
        now = utc_timestamp(dt.datetime.now(dt.UTC))
        sealed = sealer.seal([Unsealed(k, c, p, now) for k, c, p in chunk], head, now)
        store.append(
            sealed.records, head=sealed.head, checkpoints=sealed.checkpoints, expected_seq=head.seq
        )
        head = sealed.head
        written += len(chunk)
    store.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the log goes (temp)")
    parser.add_argument("--sample", type=int, default=20_000, help="records for the peer")
    parser.add_argument(
        "--no-postgres",
        action="store_true",
        help="skip the throwaway PostgreSQL server (measured by default)",
    )
    args = parser.parse_args()
    keys = AuditKeys.from_secret(b"benchmark-secret-key-0123456789ab")
    n = args.records
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} (figures scale with it)")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench-report.db"
        seconds = build_log(path, n, keys)
        size = path.stat().st_size
        print(
            f"log: {n:,} records, {size / 1e6:,.0f} MB, built in {seconds:,.1f} s "
            f"({n / seconds:,.0f} records/s, batches of 10,000)"
        )
        with AuditLog.open(path, keys=keys) as log:
            started = time.perf_counter()
            ok = log.verify().ok
            rate = n / (time.perf_counter() - started)
            print(f"verify:                                 {rate:>10,.0f} records/s (ok={ok})")
        started = time.perf_counter()
        sqlite_report(path)
        cold = time.perf_counter() - started
        print(
            f"cold report (index all + aggregate):    {n / cold:>10,.0f} records/s  ({cold:.1f} s)"
        )
        figures: dict[str, float] = {}
        for by in GROUPINGS:
            started = time.perf_counter()
            report = sqlite_report(path, by=by)
            elapsed = time.perf_counter() - started
            figures[by or "total"] = n / elapsed
            print(
                f"SQLite report --by {by or '(none)':<13}: {n / elapsed:>10,.0f} records/s  "
                f"{_met(n / elapsed)}  ({elapsed:.2f} s, {report.total.screened.count:,} "
                f"requests, {len(report.rows):,} groups)"
            )
        sample = min(args.sample, n)
        started = time.perf_counter()
        build_report(read_records(path, 1, sample), by="branch")
        peer = sample / (time.perf_counter() - started)
        print(f"peer: parse every record (build_report) {peer:>10,.0f} records/s on {sample:,}")
        slowest = min(figures.values())
        print(f"SQL aggregation is {slowest / peer:,.0f}x the parsing report (slowest grouping)")
        state = "met" if slowest >= TARGET else "NOT met"
        print(
            f"target: report aggregation >= {TARGET:,} records/s on SQLite: {state} "
            f"(slowest {slowest:,.0f})"
        )
        cold_state = "met" if n / cold >= TARGET else "NOT met"
        print(
            f"        cold report incl. first indexing >= {TARGET:,} records/s: {cold_state} "
            f"({n / cold:,.0f}; indexing runs once per record, later reports are incremental)"
        )
        if args.no_postgres:
            print("PostgreSQL: not measured (--no-postgres)")
        else:
            _postgres(n, keys)


def _met(rate: float) -> str:
    return f"{'met' if rate >= TARGET else 'NOT met'} (>= {TARGET:,})"


def _postgres(n: int, keys: AuditKeys) -> None:
    """The same log and reports in a throwaway PostgreSQL server (tests/postgres_server.py)."""
    import sys

    from guardrail.audit.period_report import store_report
    from guardrail.stores import open_audit_store

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from postgres_server import PostgresServer, PostgresUnavailable, create_database

    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        print(f"PostgreSQL: not measured: {exc}")
        return
    try:
        server.start()
    except PostgresUnavailable as exc:
        server.destroy()
        print(f"PostgreSQL: not measured: {exc}")
        return
    try:
        url = create_database(server.url)
        seconds = build_log(url, n, keys)
        print(f"PostgreSQL log: {n:,} records built in {seconds:,.1f} s")
        started = time.perf_counter()
        store_report(open_audit_store(url, create=False))
        cold = time.perf_counter() - started
        print(f"PostgreSQL cold report (index all + aggregate): {n / cold:>10,.0f} records/s")
        slowest = float("inf")
        store = open_audit_store(url, create=False)
        try:
            for by in GROUPINGS:
                started = time.perf_counter()
                store_report(store, by=by)
                rate = n / (time.perf_counter() - started)
                slowest = min(slowest, rate)
                print(
                    f"PostgreSQL report --by {by or '(none)':<13}: {rate:>10,.0f} records/s  "
                    f"{_met(rate)}"
                )
        finally:
            store.close()
        state = "met" if slowest >= TARGET else "NOT met"
        print(
            f"target: report aggregation >= {TARGET:,} records/s on PostgreSQL: {state} "
            f"(slowest {slowest:,.0f})"
        )
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
