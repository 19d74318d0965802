"""Reports over a simulated stream reproduce totals computed independently from the plan."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from audit_factory import SECRET, T0, make_decision, make_event

from guardrail.audit import AuditKeys, AuditLog, GroupBy, build_report, read_records
from guardrail.audit.cli import report_main
from guardrail.audit.records import AnyPayload, SessionStepRecord
from guardrail.model import Action
from guardrail.model.session import Outcome, SessionStep

BRANCHES = ("B001", "B002", "B003")
TELLERS = ("T01", "T02", "T03", "T04")
KINDS = ("cash_withdrawal", "transfer", "term_deposit_early_withdrawal")
RULES = ("R_ELDERLY", "R_SAFE_ACCOUNT", "R_NEW_PAYEE", "R_LARGE_CASH")
PREVENTED = {
    "withdrawn_after_dissuasion",
    "intercepted",
    "police_notified",
    "protective_stop_payment",
}


@dataclass
class PlannedCase:
    case_id: str
    branch: str
    teller: str
    kind: str
    fen: int
    when: dt.datetime
    decisions: list[tuple[Action, tuple[str, ...], dt.datetime]] = field(default_factory=list)
    outcome: str | None = None
    verdict: bool | None = None
    overrides: int = 0
    escalations: int = 0
    teller_overrides: int = 0
    approvals: int = 0
    rejections: int = 0
    refusals: int = 0
    legacy: bool = False  # written as the counter session wrote them before their own kinds


def plan(seed: int, n: int) -> list[PlannedCase]:
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        when = T0 + dt.timedelta(hours=rng.randrange(0, 24 * 30), minutes=rng.randrange(60))
        case = PlannedCase(
            case_id=f"E{i:06d}",
            branch=rng.choice(BRANCHES),
            teller=rng.choice(TELLERS),
            kind=rng.choice(KINDS),
            fen=rng.randrange(1, 5_000_000) * 100 + rng.randrange(100),
            when=when,
        )
        for k in range(rng.choice((1, 1, 1, 2))):
            action = rng.choice(list(Action))
            rules = (
                tuple(sorted(rng.sample(RULES, rng.randrange(0, 3))))
                if action > Action.PROCEED
                else ()
            )
            case.decisions.append((action, rules, when + dt.timedelta(minutes=5 * k)))
        case.escalations = rng.choice((0, 0, 1))
        case.overrides = rng.choice((0, 0, 0, 1))
        case.teller_overrides = rng.choice((0, 0, 0, 1))
        case.approvals = rng.choice((0, 0, 1))
        case.rejections = rng.choice((0, 0, 0, 1))
        case.refusals = rng.choice((0, 0, 1, 2))
        case.legacy = rng.random() < 0.25
        if rng.random() < 0.8:
            case.outcome = rng.choice([o.value for o in Outcome])
            case.verdict = rng.choice((True, False, None))
        cases.append(case)
    return cases


def steps(
    log: AuditLog, case: PlannedCase, at: dt.datetime, count: int, kind: str, **fields: Any
) -> list[SessionStepRecord]:
    """The audit records of `count` session steps of one kind, by the case's teller."""
    return [
        log.session_step_record(
            SessionStep(case_id=case.case_id, kind=kind, at=at, teller_id=case.teller, **fields)
        )
        for _ in range(count)
    ]


def write(log: AuditLog, cases: list[PlannedCase]) -> None:
    batch: list[AnyPayload] = []
    for case in cases:
        amount = str(Decimal(case.fen) / 100)
        for k, (action, rules, when) in enumerate(case.decisions):
            event = make_event(
                0, kind=case.kind, amount=amount, branch=case.branch, teller=case.teller, when=when
            ).model_copy(update={"event_id": case.case_id if k == 0 else f"{case.case_id}-{k}"})
            batch.append(
                log.decision_record(
                    event, make_decision(event, action, rules), case_id=case.case_id
                )
            )
        at = case.when + dt.timedelta(minutes=30)
        batch += steps(log, case, at, case.escalations, "escalated", supervisor_id="S1")
        batch += change_steps(log, case, at)
        batch += steps(
            log,
            case,
            at,
            case.refusals,
            "step_refused",
            refused_step="record_outcome",
            reason="refused in state escalated: wait for the supervisor",
        )
        batch += steps(
            log,
            case,
            at,
            case.overrides,
            "supervisor_override",
            supervisor_id="S1",
            override_from="hold",
            override_to="proceed",
        )
        if case.outcome is not None:
            batch += steps(
                log,
                case,
                at,
                1,
                "outcome_recorded",
                outcome=case.outcome,
                confirmed_fraud=case.verdict,
            )
        batch += steps(log, case, at, 1, "closed")
        if len(batch) >= 100:
            log.append(batch)
            batch = []
    log.append(batch)


# Teller raises, approvals and rejections: under their own kinds, or (legacy) under the nearest
# kind with the session's step name leading the reason, as older logs hold them.
CHANGE_STEPS: dict[bool, tuple[dict[str, str], dict[str, str], dict[str, str]]] = {
    False: (
        {
            "kind": "teller_override",
            "override_from": "notice",
            "override_to": "intercept",
            "reason": "客户神色慌张",
        },
        {
            "kind": "supervisor_approved",
            "supervisor_id": "S1",
            "override_from": "review",
            "override_to": "review",
        },
        {
            "kind": "supervisor_rejected",
            "supervisor_id": "S1",
            "override_from": "review",
            "override_to": "intercept",
            "reason": "疑似冒充公检法",
        },
    ),
    True: (
        {"kind": "escalated", "reason": "teller_raise: 客户神色慌张 | raised notice -> intercept"},
        {
            "kind": "supervisor_override",
            "supervisor_id": "S1",
            "override_from": "review",
            "override_to": "review",
            "reason": "supervisor_approve",
        },
        {
            "kind": "supervisor_override",
            "supervisor_id": "S1",
            "override_from": "review",
            "override_to": "intercept",
            "reason": "supervisor_reject: 疑似冒充公检法",
        },
    ),
}


def change_steps(log: AuditLog, case: PlannedCase, at: dt.datetime) -> list[SessionStepRecord]:
    raise_, approve, reject = CHANGE_STEPS[case.legacy]
    counts = (case.teller_overrides, case.approvals, case.rejections)
    records: list[SessionStepRecord] = []
    for fields, count in zip((raise_, approve, reject), counts, strict=True):
        records += steps(log, case, at, count, **fields)
    return records


def expected_totals(
    cases: list[PlannedCase], start: dt.datetime | None, end: dt.datetime | None
) -> dict[str, object]:
    def inside(moment: dt.datetime) -> bool:
        return (start is None or moment >= start) and (end is None or moment < end)

    by_action: Counter[str] = Counter()
    by_action_fen: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    by_outcome_fen: Counter[str] = Counter()
    rule_hits: Counter[str] = Counter()
    rule_verdicts: Counter[str] = Counter()
    rule_confirmed: Counter[str] = Counter()
    figures: Counter[str] = Counter()
    branch_cases: Counter[str] = Counter()
    intercepted_cash = [0, 0]
    for case in cases:
        for action, rules, when in case.decisions:
            if inside(when):
                by_action[action.value] += 1
                by_action_fen[action.value] += case.fen
                figures["decisions"] += 1
                for rule in rules:
                    rule_hits[rule] += 1
                    if case.verdict is not None:
                        rule_verdicts[rule] += 1
                        rule_confirmed[rule] += case.verdict
        if not inside(case.decisions[0][2]):
            continue
        figures["cases"] += 1
        branch_cases[case.branch] += 1
        key = case.outcome or "open"
        by_outcome[key] += 1
        by_outcome_fen[key] += case.fen
        if case.outcome in PREVENTED:
            figures["prevented"] += 1
            figures["prevented_fen"] += case.fen
            if case.verdict:
                figures["prevented_fraud"] += 1
                figures["prevented_fraud_fen"] += case.fen
        if case.outcome == "intercepted" and case.kind == "cash_withdrawal":
            intercepted_cash[0] += 1
            intercepted_cash[1] += case.fen
        if case.outcome == "police_notified":
            figures["police"] += 1
        if case.verdict is False and max(a for a, _, _ in case.decisions) >= Action.INQUIRE:
            figures["legit_questioned"] += 1
        figures["overrides"] += case.overrides
        figures["escalations"] += case.escalations
        figures["teller_overrides"] += case.teller_overrides
        figures["approvals"] += case.approvals
        figures["rejections"] += case.rejections
        figures["refusals"] += case.refusals
    return {
        "by_action": by_action,
        "by_action_fen": by_action_fen,
        "by_outcome": by_outcome,
        "by_outcome_fen": by_outcome_fen,
        "rule_hits": rule_hits,
        "rule_verdicts": rule_verdicts,
        "rule_confirmed": rule_confirmed,
        "figures": figures,
        "branch_cases": branch_cases,
        "intercepted_cash": intercepted_cash,
    }


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[PlannedCase]]:
    path = tmp_path_factory.mktemp("report") / "audit.db"
    cases = plan(seed=20250301, n=400)
    with AuditLog.open(path, keys=AuditKeys.from_secret(SECRET), checkpoint_every=50) as log:
        write(log, cases)
        assert log.verify().ok
    return path, cases


WINDOWS = [
    (None, None),
    (T0 + dt.timedelta(days=7), T0 + dt.timedelta(days=21)),
    (T0 + dt.timedelta(days=29), None),
]


@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_totals_match_an_independent_computation(
    stream: tuple[Path, list[PlannedCase]], start: dt.datetime | None, end: dt.datetime | None
) -> None:
    path, cases = stream
    want = expected_totals(cases, start, end)
    report = build_report(read_records(path), by=GroupBy.BRANCH, start=start, end=end)
    total = report.total
    figures = want["figures"]
    assert isinstance(figures, Counter)
    assert total.decisions.count == figures["decisions"]
    for action in Action:
        tally = total.by_action[action.value]
        assert tally.count == want["by_action"][action.value]  # type: ignore[index]
        assert tally.amount_fen() == want["by_action_fen"][action.value]  # type: ignore[index]
    assert total.cases.count == figures["cases"]
    for key in [o.value for o in Outcome] + ["open"]:
        assert total.by_outcome[key].count == want["by_outcome"][key]  # type: ignore[index]
        assert total.by_outcome[key].amount_fen() == want["by_outcome_fen"][key]  # type: ignore[index]
    assert total.prevented.count == figures["prevented"]
    assert total.prevented.amount_fen() == figures["prevented_fen"]
    assert total.prevented_confirmed_fraud.count == figures["prevented_fraud"]
    assert total.prevented_confirmed_fraud.amount_fen() == figures["prevented_fraud_fen"]
    assert total.by_outcome["police_notified"].count == figures["police"]
    assert total.legitimate_questioned.count == figures["legit_questioned"]
    # each step counted once, under its own kind: approvals, rejections and teller raises are
    # neither overrides nor escalations, in new logs and in logs written before their kinds
    assert total.overrides == figures["overrides"]
    assert total.escalations == figures["escalations"]
    assert total.teller_overrides == figures["teller_overrides"]
    assert total.approvals == figures["approvals"]
    assert total.rejections == figures["rejections"]
    assert total.refusals == figures["refusals"]
    for branch in BRANCHES:
        got = report.groups[branch].cases.count if branch in report.groups else 0
        assert got == want["branch_cases"][branch]  # type: ignore[index]
    for rule in RULES:
        stats = report.rules.get(rule)
        hits = want["rule_hits"][rule]  # type: ignore[index]
        assert (stats.hits.count if stats else 0) == hits
        if stats is not None:
            assert stats.hits_with_verdict == want["rule_verdicts"][rule]  # type: ignore[index]
            assert stats.hits_confirmed_fraud == want["rule_confirmed"][rule]  # type: ignore[index]
            if stats.hits_with_verdict:
                assert stats.precision == pytest.approx(
                    stats.hits_confirmed_fraud / stats.hits_with_verdict
                )
    # "intercepted cash withdrawals and their total"
    by_kind = build_report(read_records(path), by="kind", start=start, end=end)
    cash = by_kind.groups.get("cash_withdrawal")
    count, fen = want["intercepted_cash"]  # type: ignore[misc]
    got = cash.by_outcome["intercepted"] if cash else None
    assert (got.count if got else 0) == count
    assert (got.amount_fen() if got else 0) == fen


def test_groups_add_up_to_the_total(stream: tuple[Path, list[PlannedCase]]) -> None:
    path, _ = stream
    for by in ("branch", "teller", "kind"):
        report = build_report(read_records(path), by=by)
        assert sum(g.cases.count for g in report.groups.values()) == report.total.cases.count
        assert (
            sum(g.decisions.amount_fen() for g in report.groups.values())
            == report.total.decisions.amount_fen()
        )


def test_json_and_csv_exports(stream: tuple[Path, list[PlannedCase]]) -> None:
    path, cases = stream
    report = build_report(read_records(path), by="rule")
    data = json.loads(report.to_json())
    assert data["total"]["cases"]["count"] == len(cases)
    assert {g["group"] for g in data["groups"]} <= {*RULES, "(no hit)"}
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    total_cases = [r for r in rows if r["section"] == "total" and r["measure"] == "cases"]
    assert sum(int(r["count"]) for r in total_cases) == len(cases)
    prevented = [r for r in rows if r["section"] == "total" and r["measure"] == "prevented"]
    assert Decimal(prevented[0]["amount"]) == report.total.prevented.amount()
    precision = [r for r in rows if r["section"] == "rule" and r["measure"] == "precision"]
    assert {r["group"] for r in precision} == set(report.rules)


def test_report_cli(
    stream: tuple[Path, list[PlannedCase]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, cases = stream
    start, end = WINDOWS[1]
    assert start is not None and end is not None
    last_day = (end - dt.timedelta(days=1)).date().isoformat()
    out = tmp_path / "r.json"
    argv = [
        str(path),
        "--from",
        start.date().isoformat(),
        "--to",
        last_day,
        "--by",
        "teller",
        "--format",
        "json",
        "-o",
        str(out),
    ]
    assert report_main(argv) == 0
    data = json.loads(out.read_text())
    # dates mean whole days in Asia/Shanghai: from midnight of --from to midnight after --to
    tz = start.tzinfo
    day_start = dt.datetime.combine(start.date(), dt.time(), tzinfo=tz)
    day_end = dt.datetime.combine(end.date(), dt.time(), tzinfo=tz)
    want = expected_totals(cases, day_start, day_end)
    # the command reports requests (each counted once, in the time of its first decision)
    assert data["total"]["screened"]["count"] == want["figures"]["cases"]  # type: ignore[index]
    assert sum(g["screened"]["count"] for g in data["groups"]) == want["figures"]["cases"]  # type: ignore[index]
    assert report_main([str(path), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("section,screened,screened_cny")
    assert report_main([str(path)]) == 0
    assert "legitimate customers questioned" in capsys.readouterr().out
    assert report_main([str(path), "--from", "yesterday"]) == 2
    assert report_main([str(tmp_path / "missing.db")]) == 2


def test_step_validation_names_the_field(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path / "v.db", keys=AuditKeys.from_secret(SECRET)) as log:
        at = T0
        with pytest.raises(ValueError, match="outcome: required"):
            log.log_session_step(
                SessionStep(case_id="E1", kind="outcome_recorded", at=at, teller_id="T01")
            )
        with pytest.raises(ValueError, match="supervisor_id: required"):
            log.log_session_step(
                SessionStep(
                    case_id="E1",
                    kind="supervisor_override",
                    at=at,
                    teller_id="T01",
                    override_to="proceed",
                )
            )
        with pytest.raises(ValueError, match="step"):
            log.log_session_step(SessionStep(case_id="E1", kind="danced", at=at, teller_id="T01"))
        with pytest.raises(ValueError, match="time zone"):
            log.log_session_step(
                SessionStep(
                    case_id="E1", kind="closed", at=dt.datetime(2025, 1, 1), teller_id="T01"
                )
            )
        event = make_event(1)
        other = make_event(2)
        with pytest.raises(ValueError, match=r"decision\.event_id"):
            log.log_decision(event, make_decision(other, Action.PROCEED))
        assert log.verify().records == 0
