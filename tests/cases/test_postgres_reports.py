"""Reports and the case ledger on the PostgreSQL audit store: the same SQL aggregation gives
the same report as SQLite on the same records; a case is walked and verified there too."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from case_support import SECRET

from guardrail.audit import AuditKeys, AuditLog
from guardrail.audit.period_report import sqlite_report, store_report
from guardrail.audit.records import decode_payload
from guardrail.audit.sqlite_store import SQLiteStore
from guardrail.cases import CaseLedger, EvidenceStore
from guardrail.stores import open_audit_store

pytestmark = pytest.mark.slow
T = dt.datetime(2025, 6, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _without_source(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "source"}


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{where}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where}: {a!r} != {b!r}"


def test_postgres_report_equals_sqlite_report(
    quarter: tuple[Path, Any], postgres_db_url: str
) -> None:
    path = quarter[0]
    keys = AuditKeys.from_secret(SECRET)
    source = SQLiteStore(path, create=False)
    store = open_audit_store(postgres_db_url)
    try:
        with AuditLog(store, keys) as log:
            batch = []
            for row in source.iterate():
                batch.append(decode_payload(row.payload))
                if len(batch) == 1000:
                    log.append(batch)
                    batch = []
            log.append(batch)
            assert log.verify().ok
        for by in ("", "month", "branch,rule", "week,branch", "typology"):
            pg = store_report(open_audit_store(postgres_db_url, create=False), by=by)
            lite = sqlite_report(path, by=by)
            a, b = _without_source(pg.to_dict()), _without_source(lite.to_dict())
            for key in a:
                assert a[key] == b[key], (by, key, _first_difference(a[key], b[key]))
        start = dt.datetime(2025, 4, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
        april_pg = store_report(
            open_audit_store(postgres_db_url, create=False),
            by="branch",
            start=start,
            end=start + dt.timedelta(days=30),
            kinds=["cash_withdrawal"],
        )
        april = sqlite_report(
            path,
            by="branch",
            start=start,
            end=start + dt.timedelta(days=30),
            kinds=["cash_withdrawal"],
        )
        assert _without_source(april_pg.to_dict()) == _without_source(april.to_dict())
        assert april.total.screened.count > 0
    finally:
        source.close()


def test_case_walked_on_postgres_verifies(postgres_db_url: str, tmp_path: Path) -> None:
    keys = AuditKeys.from_secret(SECRET)
    with AuditLog(open_audit_store(postgres_db_url), keys) as log:
        ledger = CaseLedger(log, EvidenceStore(tmp_path / "evidence"))
        case = ledger.open("complaint", by="desk", text="card swallowed", branch_id="BR001", at=T)
        ledger.attach(case, b"ATM journal extract", by="CO01", name="journal.txt", at=T)
        ledger.verdict(case, "not_fraud", by="CO01", at=T + dt.timedelta(days=1))
        ledger.close(case, "complaint_upheld", by="CO01", at=T + dt.timedelta(days=2))
        assert ledger.get(case).status == "closed"
        assert ledger.verify().ok
    report = store_report(open_audit_store(postgres_db_url, create=False))
    assert (report.total.complaints_received, report.total.complaints_closed) == (1, 1)
