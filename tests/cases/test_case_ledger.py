"""The case ledger: a case walked from a screening to its verdict and close verifies in the
chain; evidence is stored by content hash and tampering with it is detected; personal data
is protected; illegal steps are refused with a clear error."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from guardrail.audit import AuditKeys, AuditLog
from guardrail.audit.period_report import sqlite_report
from guardrail.cases import CaseError, CaseLedger, CaseType, Party, Verdict
from guardrail.guard import Guard
from guardrail.model import Action, Money
from guardrail.sim.generator import generate

T = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _held_request(guard: Guard) -> tuple[object, object]:
    for item in generate(4000, 0.05, 3):
        if item.executed_history_hint != "if_allowed":
            continue
        decision = guard.screen(item.event)
        if decision.action >= Action.HOLD:
            return item.event, decision
    raise AssertionError("no request at hold or above in the stream")


def test_case_walked_from_decision_to_verdict_and_close_verifies(
    ledger: CaseLedger, guard: Guard, tmp_path: Path
) -> None:
    event, decision = _held_request(guard)
    ledger.log.log_decision(event, decision)  # type: ignore[arg-type]
    case_id = ledger.open_from_decision(event, decision, at=T, by="BR001-S1")  # type: ignore[arg-type]
    assert case_id == event.event_id  # type: ignore[attr-defined]
    ledger.assign(case_id, "CO07", by="HQ", at=T + dt.timedelta(hours=1))
    ledger.note(case_id, "called the son on 13912345678", by="CO07", at=T + dt.timedelta(hours=2))
    letter = tmp_path / "police-letter.txt"
    letter.write_bytes("派出所回执 2025-03-10".encode())
    digest = ledger.attach(case_id, letter, by="CO07", at=T + dt.timedelta(days=1))
    ledger.verdict(case_id, "fraud_confirmed", by="PSB-96110", at=T + dt.timedelta(days=7))
    ledger.close(
        case_id,
        "fraud_prevented",
        by="CO07",
        prevented=Money(value=Decimal("80000.00")),
        reported_to_police=True,
        at=T + dt.timedelta(days=8),
    )
    state = ledger.get(case_id)
    assert state.status == "closed" and state.verdict is Verdict.FRAUD_CONFIRMED
    assert state.assignee == "CO07" and state.reported_to_police
    assert [e.sha256 for e in state.evidence] == [digest]
    assert [entry.entry.value for _, entry in state.entries] == [
        "opened",
        "assigned",
        "note",
        "evidence_attached",
        "verdict",
        "closed",
    ]
    report = ledger.verify()
    assert report.ok, report.to_dict()
    assert report.chain.records == 7 and report.evidence_checked == 1
    assert "13912345678" not in state.entries[2][1].text  # the phone in the note is hashed


def test_tampered_or_missing_evidence_is_detected(ledger: CaseLedger) -> None:
    case_id = ledger.open(CaseType.MANUAL, by="CO01", text="tip-off", at=T)
    digest = ledger.attach(
        case_id, b"scan of the withdrawal slip", by="CO01", name="slip.pdf", at=T
    )
    path = ledger.evidence.path_of(digest)
    assert ledger.verify().ok
    path.chmod(0o644)
    path.write_bytes(b"scan of another slip")
    report = ledger.verify()
    assert not report.ok and report.chain.ok
    assert [p.kind for p in report.evidence_problems] == ["modified"]
    assert case_id in report.evidence_problems[0].message
    path.unlink()
    assert [p.kind for p in ledger.verify().evidence_problems] == ["missing"]


def test_editing_a_ledger_entry_in_the_file_breaks_the_chain(
    ledger: CaseLedger, tmp_path: Path
) -> None:
    case_id = ledger.open(CaseType.COMPLAINT, by="desk", text="queue too long", at=T)
    ledger.close(case_id, "complaint_upheld", by="desk", at=T + dt.timedelta(days=1))
    conn = sqlite3.connect(tmp_path / "audit.db")
    conn.execute("DROP TRIGGER records_no_update")
    conn.execute(
        "UPDATE records SET payload = replace(payload, 'complaint_upheld', 'complaint_rejected')"
        " WHERE seq = 2"
    )
    conn.commit()
    conn.close()
    report = ledger.verify()
    assert not report.ok
    assert report.chain.problem is not None and report.chain.problem.seq == 2


def test_parties_and_text_are_stored_protected(ledger: CaseLedger, tmp_path: Path) -> None:
    ledger.open(
        CaseType.FRICTION_COMPLAINT,
        by="desk",
        text="张伟 says he was held for an hour; call back on 13800138000",
        parties=[
            Party(
                "complainant",
                name="张伟",
                phone="+86 138-0013-8000",
                id_number="110101195001011234",
            )
        ],
        at=T,
    )
    raw = (tmp_path / "audit.db").read_bytes()
    for secret in ("张伟", "13800138000", "110101195001011234", "138-0013-8000"):
        assert secret.encode() not in raw, secret
    party = ledger.cases()[0].parties[0]
    assert party.phone is not None and party.phone.startswith("h:")


def test_illegal_steps_are_refused_with_the_reason(ledger: CaseLedger) -> None:
    with pytest.raises(CaseError, match="no such case"):
        ledger.note("CMP-nothing", "hello", by="x")
    case_id = ledger.open("complaint", by="desk", at=T)
    with pytest.raises(CaseError, match=r"verdict.*not one of"):
        ledger.verdict(case_id, "guilty", by="x")
    with pytest.raises(CaseError, match="already open"):
        ledger.open("complaint", by="desk", case_id=case_id)
    ledger.close(case_id, "complaint_upheld", by="desk", at=T + dt.timedelta(hours=3))
    with pytest.raises(CaseError, match=r"closed.*not assigned"):
        ledger.assign(case_id, "CO01", by="HQ")
    # what is learnt later is still accepted after the close
    ledger.verdict(case_id, "not_fraud", by="desk", at=T + dt.timedelta(days=2))
    ledger.amounts(
        case_id, by="desk", returned=Money(value=Decimal("100.00")), at=T + dt.timedelta(days=3)
    )
    with pytest.raises(CaseError, match="by"):
        ledger.note(case_id, "x", by="has spaces")
    assert ledger.verify().ok


def test_a_verdict_written_later_changes_rule_precision(
    tmp_path: Path, keys: AuditKeys, guard: Guard
) -> None:
    path = tmp_path / "audit.db"
    with AuditLog.open(path, keys=keys) as log:
        event, decision = _held_request(guard)
        log.log_decision(event, decision)  # type: ignore[arg-type]
        ledger = CaseLedger.for_sqlite(log)
        case_id = ledger.open_from_decision(event, decision, at=T)  # type: ignore[arg-type]
        rules = {hit.rule_id for hit in decision.hits}  # type: ignore[attr-defined]
        before = sqlite_report(path)
        assert all(before.rules[r].with_verdict == 0 for r in rules)
        ledger.verdict(case_id, "fraud_confirmed", by="PSB1", at=T + dt.timedelta(days=5))
        after = sqlite_report(path)
        for rule in rules:
            assert (after.rules[rule].with_verdict, after.rules[rule].confirmed) == (1, 1)
            interval = after.rules[rule].interval
            assert interval is not None and interval[0] < 0.25 and interval[1] == 1.0
        ledger.verdict(case_id, "unknown", by="PSB1", at=T + dt.timedelta(days=6))
        withdrawn = sqlite_report(path)
        assert all(withdrawn.rules[r].with_verdict == 0 for r in rules)


def test_intake_opens_one_case_per_screening_at_the_configured_action(
    ledger: CaseLedger, guard: Guard
) -> None:
    from guardrail.cases import CasePolicy

    logged = 0
    for item in generate(3000, 0.05, 5):
        if item.executed_history_hint == "if_allowed":
            ledger.log.log_decision(item.event, guard.screen(item.event))
            logged += 1
        if logged == 400:
            break
    held = {
        r.payload.case_id
        for r in ledger.log.records()
        if r.payload.type == "decision" and r.payload.action >= Action.HOLD  # type: ignore[union-attr]
    }
    opened = ledger.intake(CasePolicy(open_at=Action.HOLD), at=T)
    assert set(opened) == held and held
    assert ledger.intake(CasePolicy(open_at=Action.HOLD), at=T) == []  # idempotent
    assert {s.case_id for s in ledger.cases("open")} == held
    assert all(s.case_type is CaseType.DECISION for s in ledger.cases())
