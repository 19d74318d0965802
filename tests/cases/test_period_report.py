"""Period reports on a simulated quarter: totals per month and per branch × rule match an
independent count made from the parsed records; "open" means open ledger cases only; the
seed-000 figures come out; the index is incremental and a verified report rebuilds it."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.audit import read_records
from guardrail.audit.intervals import wilson
from guardrail.audit.period_report import ReportError, parse_by, sqlite_report
from guardrail.audit.records import CaseEntryRecord, DecisionRecord, SessionStepRecord
from guardrail.auditsim import SimulationSummary

SHANGHAI = ZoneInfo("Asia/Shanghai")
PREVENTED = {
    "withdrawn_after_dissuasion",
    "intercepted",
    "police_notified",
    "protective_stop_payment",
}
Quarter = tuple[Path, SimulationSummary]


def _independent(path: Path) -> dict[str, Any]:
    """Everything the tests compare, computed in Python from the parsed records."""
    first: dict[str, DecisionRecord] = {}
    rules: dict[str, set[str]] = defaultdict(set)
    outcome: dict[str, str] = {}
    opened: dict[str, CaseEntryRecord] = {}
    closed: set[str] = set()
    returned: dict[str, int] = {}
    for record in read_records(path):
        p = record.payload
        if isinstance(p, DecisionRecord):
            first.setdefault(p.case_id, p)
            rules[p.case_id].update(h.rule_id for h in p.hits)
        elif isinstance(p, SessionStepRecord):
            if p.outcome is not None:
                outcome[p.case_id] = p.outcome.value
        elif isinstance(p, CaseEntryRecord):
            if p.entry.value == "opened":
                opened.setdefault(p.case_id, p)
            if p.entry.value == "closed":
                closed.add(p.case_id)
            if p.amount_returned is not None:
                returned[p.case_id] = p.amount_returned.fen
    monthly: dict[str, Counter[str]] = defaultdict(Counter)
    branch_rule: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for case_id, d in first.items():
        month = d.event.timestamp.astimezone(SHANGHAI).strftime("%Y-%m")
        stopped = outcome.get(case_id) in PREVENTED
        for bucket in [monthly[month]] + [
            branch_rule[(d.event.branch_id, r)] for r in (rules[case_id] or {"(none)"})
        ]:
            bucket["screened"] += 1
            bucket["screened_fen"] += d.event.amount_fen
            bucket["intercepted"] += stopped
            bucket["intercepted_fen"] += d.event.amount_fen if stopped else 0
            bucket["no_outcome"] += case_id not in outcome
    for case_id, entry in opened.items():
        month = entry.at.astimezone(SHANGHAI).strftime("%Y-%m")
        monthly[month]["cases_opened"] += 1
        monthly[month]["cases_open"] += case_id not in closed
        if entry.case_type is not None and entry.case_type.value.endswith("complaint"):
            monthly[month]["complaints"] += 1
            monthly[month]["complaints_closed"] += case_id in closed
    return {
        "monthly": monthly,
        "branch_rule": branch_rule,
        "returned_fen": sum(returned.values()),
        "open_cases": len(set(opened) - closed),
    }


@pytest.fixture(scope="module")
def expected(quarter: Quarter) -> dict[str, Any]:
    return _independent(quarter[0])


def test_monthly_table_matches_an_independent_count(
    quarter: Quarter, expected: dict[str, Any]
) -> None:
    report = sqlite_report(quarter[0], by="month")
    months = {row.key[0]: row for row in report.sorted_rows()}
    assert len(months) >= 3, "the simulated quarter spans three months"
    assert set(months) == set(expected["monthly"])
    for month, want in expected["monthly"].items():
        row = months[month]
        got = {
            "screened": row.screened.count,
            "screened_fen": row.screened.fen.get("CNY", 0),
            "intercepted": row.intercepted.count,
            "intercepted_fen": row.intercepted.fen.get("CNY", 0),
            "no_outcome": row.no_outcome,
            "cases_opened": row.cases_opened,
            "cases_open": row.cases_open,
            "complaints": row.complaints_received,
            "complaints_closed": row.complaints_closed,
        }
        assert got == {k: want.get(k, 0) for k in got}, month
    assert sum(r.screened.count for r in months.values()) == report.total.screened.count


def test_branch_by_rule_table_matches_an_independent_count(
    quarter: Quarter, expected: dict[str, Any]
) -> None:
    report = sqlite_report(quarter[0], by="branch,rule")
    got = {
        row.key: (row.screened.count, row.screened.fen.get("CNY", 0), row.intercepted.count)
        for row in report.sorted_rows()
    }
    want = {
        key: (c["screened"], c["screened_fen"], c["intercepted"])
        for key, c in expected["branch_rule"].items()
    }
    assert got == want
    assert len({k[0] for k in got}) == 10 and len({k[1] for k in got}) > 10


def test_open_means_open_cases_only(quarter: Quarter, expected: dict[str, Any]) -> None:
    path, summary = quarter
    t = sqlite_report(path).total
    # every request that simply went through is recognisable: an executed outcome
    assert t.no_outcome == 0 and t.executed.count == summary.executed
    assert t.cases_open == expected["open_cases"] < t.screened.count // 20
    assert t.cases_opened == t.cases_closed + t.cases_open
    text = sqlite_report(path).to_text()
    assert f"open {t.cases_open:,}" in text and "no outcome recorded 0" in text


def test_seed_000_figures_come_out(quarter: Quarter, expected: dict[str, Any]) -> None:
    """Complaints received / closed / close rate, amounts intercepted and returned."""
    t = sqlite_report(quarter[0]).total
    assert t.complaints_received > 20
    assert 0 < t.complaints_closed <= t.complaints_received
    assert t.complaint_close_rate == pytest.approx(t.complaints_closed / t.complaints_received)
    assert t.intercepted.count > 0 and t.intercepted.fen["CNY"] > 0
    assert t.returned.fen.get("CNY", 0) == expected["returned_fen"] > 0
    cash = sqlite_report(quarter[0], kinds=["cash_withdrawal"]).total
    assert 0 < cash.intercepted.count < t.intercepted.count
    counter = sqlite_report(quarter[0], channels=["counter"]).total
    assert counter.screened.count == t.screened.count  # only counter requests are screened


def test_precision_carries_n_and_a_wilson_interval(quarter: Quarter) -> None:
    report = sqlite_report(quarter[0])
    judged = [r for r in report.rules.values() if r.with_verdict]
    assert judged
    for r in judged:
        low, high = r.interval  # type: ignore[misc]
        assert low <= (r.precision or 0) <= high
    data = json.loads(report.to_json())
    rule = next(x for x in data["rules"] if x["n"])
    assert set(rule) >= {"n", "precision", "interval95", "confirmed"}
    assert "95% interval" in report.to_text()


def test_periods_and_combinations(quarter: Quarter) -> None:
    total = sqlite_report(quarter[0]).total.screened.count
    for by in ("day", "week", "quarter", "week,branch", "month,kind", "channel,teller"):
        report = sqlite_report(quarter[0], by=by)
        assert sum(r.screened.count for r in report.sorted_rows()) == total, by
    weeks = sqlite_report(quarter[0], by="week")
    assert all(k[0].startswith("2025-W") for k in weeks.rows)
    quarters = sqlite_report(quarter[0], by="quarter")
    assert set(k[0] for k in quarters.rows) <= {"2025-Q1", "2025-Q2"}
    start = dt.datetime(2025, 4, 1, tzinfo=SHANGHAI)
    april = sqlite_report(quarter[0], by="month", start=start, end=start + dt.timedelta(days=30))
    assert list(k[0] for k in april.rows) == ["2025-04"]


def test_bad_groupings_are_named() -> None:
    with pytest.raises(ReportError, match="unknown grouping 'brnch'"):
        parse_by("month,brnch")
    with pytest.raises(ReportError, match="at most one period"):
        parse_by("month,week")


def test_index_is_incremental_and_a_verified_report_rebuilds_it(
    quarter: Quarter, tmp_path: Path
) -> None:
    copy = tmp_path / "q.db"
    src = sqlite3.connect(quarter[0])
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    honest = sqlite_report(copy, by="month").to_dict()
    conn = sqlite3.connect(copy)
    conn.execute(
        "UPDATE rpt_screening SET amount_fen = amount_fen * 10"
    )  # the index is not chained
    conn.commit()
    conn.close()
    assert sqlite_report(copy, by="month").to_dict()["total"] != honest["total"]
    env = {"GUARDRAIL_AUDIT_KEY": "case-tests-secret-key-0123456789ab", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "guardrail.cli",
            "audit",
            "report",
            str(copy),
            "--by",
            "month",
            "--verify",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": ":".join(sys.path)},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rebuilt = json.loads(out.stdout)
    assert rebuilt["total"] == honest["total"] and rebuilt["groups"] == honest["groups"]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 10_000), data=st.data())
def test_wilson_interval_is_inside_unit_and_holds_the_estimate(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    low, high = wilson(k, n)  # type: ignore[misc]
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert wilson(k, n * 4) is not None


def test_wilson_known_values() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(3, 3)  # type: ignore[misc]
    assert low == pytest.approx(0.4385, abs=1e-4) and high == 1.0
    low, high = wilson(50, 100)  # type: ignore[misc]
    assert (low, high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))


def test_counter_verdicts_and_police_flags_are_read_as_true(tmp_path: Path) -> None:
    """JSON ``true`` comes out of SQLite as the integer 1: both spellings count."""
    from guardrail.audit import AuditKeys, AuditLog
    from guardrail.cases import CaseLedger
    from guardrail.model import Action, Decision, Event, Hit, PackRef
    from guardrail.model.session import SessionStep

    event = Event.model_validate_json(
        json.dumps(
            {
                "event_id": "E1",
                "kind": "cash_withdrawal",
                "amount": {"value": "50000.00"},
                "timestamp": "2025-03-03T10:00:00+08:00",
                "branch": {"id": "B001", "region": "CN-ZJ"},
                "teller_id": "T01",
                "customer": {"id": "C1", "birth_date": "1950-01-01"},
            }
        )
    )
    pack = PackRef(name="p", version="1", content_hash="sha256:" + "ab" * 32)

    def make_decision(event: Event, action: Action, rules: tuple[str, ...]) -> Decision:
        hits = tuple(Hit(rule_id=r, title_zh="规则", title_en=r, action=action) for r in rules)
        return Decision(event_id="E1", action=action, hits=hits, pack=pack, backend="reference")

    path = tmp_path / "flags.db"
    with AuditLog.open(
        path, keys=AuditKeys.from_secret(b"flags-secret-key-0123456789abcdef")
    ) as log:
        log.log_decision(event, make_decision(event, Action.INTERCEPT, ("R1",)))
        log.log_session_step(
            SessionStep(
                case_id="E1",
                kind="outcome_recorded",
                at=event.timestamp,
                teller_id="T01",
                outcome="police_notified",
                confirmed_fraud=True,
                event=event,
            )
        )
        ledger = CaseLedger.for_sqlite(log)
        case = ledger.open_from_decision(
            event, make_decision(event, Action.INTERCEPT, ("R1",)), at=event.timestamp
        )
        ledger.close(
            case,
            "fraud_prevented",
            by="CO1",
            reported_to_police=True,
            at=event.timestamp + dt.timedelta(days=1),
        )
    t = sqlite_report(path).total
    assert (t.fraud_confirmed, t.police_notified.count, t.cases_reported_to_police) == (1, 1, 1)
    assert sqlite_report(path).rules["R1"].confirmed == 1


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Etc/GMT+5"])
def test_days_match_an_independent_count_in_the_index_offset_and_another(
    quarter: Quarter, tz: str
) -> None:
    """Asia/Shanghai groups by the stored day column (the index's offset); UTC-5 computes the
    day from the epoch: both must give each local day's requests."""
    zone = ZoneInfo(tz)
    want: Counter[str] = Counter()
    seen: set[str] = set()
    for record in read_records(quarter[0]):
        p = record.payload
        if isinstance(p, DecisionRecord) and p.case_id not in seen:
            seen.add(p.case_id)
            want[p.event.timestamp.astimezone(zone).date().isoformat()] += 1
    report = sqlite_report(quarter[0], by="day", tz=tz)
    got = {row.key[0]: row.screened.count for row in report.sorted_rows()}
    assert got == dict(want)
