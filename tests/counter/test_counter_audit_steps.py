"""Each session step goes to the audit log under its own kind; refused attempts are logged
and change nothing; personal data in answers and reasons never reaches the log's bytes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from counter_factory import FULL, STARTER, Clock, case_003, event, guard, involved_payee

from guardrail.audit import AuditKeys, AuditLog, SessionStepRecord, StepKind, build_report
from guardrail.counter import CounterSession, IllegalStep, Outcome, Step
from guardrail.counter.journal import AUDIT_KIND
from guardrail.model import Action

SECRET = b"counter-tests-secret-0123456789"


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def audit(audit_path: Path) -> Iterator[AuditLog]:
    log = AuditLog.open(audit_path, keys=AuditKeys.from_secret(SECRET))
    yield log
    log.close()


def steps_of(audit: AuditLog, case_id: str | None = None) -> list[SessionStepRecord]:
    return [
        r.payload
        for r in audit.records()
        if isinstance(r.payload, SessionStepRecord)
        and (case_id is None or r.payload.case_id == case_id)
    ]


def test_every_step_has_its_own_audit_kind() -> None:
    assert set(AUDIT_KIND) == set(Step)
    kinds = [kind for kind in AUDIT_KIND.values() if kind is not None]
    assert len(kinds) == len(set(kinds))  # no two steps share a kind
    assert AUDIT_KIND[Step.OPEN] is None  # the decision record is the whole entry
    assert StepKind.ACKNOWLEDGED not in kinds  # the legacy kind is no longer written


def test_each_step_is_written_under_its_own_kind(audit: AuditLog) -> None:
    g, clock = guard(STARTER), Clock()
    a = CounterSession.open(g, event(event_id="evt-a"), clock=clock, audit=audit)
    a.record_observations(["nervous"])
    a.deliver_notice()
    a.acknowledge_notice()
    a.teller_raise(Action.REVIEW, "客户神色慌张")
    a.escalate("请主管核实")
    a.supervisor_approve("S0009", "核实为本人")
    a.sign_risk_acknowledgement()
    a.record_outcome(Outcome.EXECUTED, confirmed_fraud=False)
    a.close()
    assert [s.step.value for s in steps_of(audit, "evt-a")] == [
        "observations_recorded",
        "notice_delivered",
        "notice_acknowledged",
        "teller_override",
        "escalated",
        "supervisor_approved",
        "risk_acknowledged",
        "outcome_recorded",
        "closed",
    ]
    by_kind = {s.step: s for s in steps_of(audit, "evt-a")}
    raised = by_kind[StepKind.TELLER_OVERRIDE]
    assert (raised.override_from, raised.override_to) == (Action.PROCEED, Action.REVIEW)
    assert raised.reason.startswith("客户神色慌张") and raised.supervisor_id is None
    approved = by_kind[StepKind.SUPERVISOR_APPROVED]
    assert approved.supervisor_id == "S0009" and approved.reason == "核实为本人"
    assert approved.override_from == approved.override_to == Action.REVIEW
    assert by_kind[StepKind.ESCALATED].reason == "请主管核实"  # no step name prefixed any more
    assert by_kind[StepKind.OBSERVATIONS_RECORDED].reason == "observed: nervous"

    b = CounterSession.open(g, event(event_id="evt-b"), clock=clock, audit=audit)
    b.escalate("可疑")
    b.supervisor_reject("S0009", "疑似冒充公检法")
    b.record_outcome(Outcome.INTERCEPTED, confirmed_fraud=True)
    b.close()
    rejected = next(s for s in steps_of(audit, "evt-b") if s.step is StepKind.SUPERVISOR_REJECTED)
    assert (rejected.supervisor_id, rejected.override_to) == ("S0009", Action.INTERCEPT)

    c = CounterSession.open(g, case_003(), clock=clock, audit=audit)
    c.escalate("客户坚持")
    c.supervisor_override("S0009", Action.REVIEW, "本人真实投资")
    assert audit.verify().ok

    total = build_report(audit.records()).total
    assert (total.overrides, total.teller_overrides, total.escalations) == (1, 1, 3)
    assert (total.approvals, total.rejections, total.refusals) == (1, 1, 0)


def test_a_refused_attempt_is_logged_and_changes_nothing(audit: AuditLog) -> None:
    session = CounterSession.open(guard(STARTER), involved_payee(), clock=Clock(), audit=audit)
    assert session.action >= Action.INTERCEPT
    before, records_before = session.to_json(), len(list(audit.records()))
    with pytest.raises(IllegalStep, match="supervisor's override") as refused:
        session.record_outcome(Outcome.EXECUTED)  # the teller tries to pay out anyway
    assert session.to_json() == before  # the session is exactly as it was
    records = list(audit.records())
    assert len(records) == records_before + 1
    last = records[-1]
    assert refused.value.audit_seq == last.seq and refused.value.audit_error is None
    assert isinstance(last.payload, SessionStepRecord)
    assert last.payload.step is StepKind.STEP_REFUSED
    assert last.payload.refused_step == "record_outcome"
    assert last.payload.teller_id == session.teller_id
    assert last.payload.event_id == session.event.event_id
    assert last.payload.reason.startswith("refused in state opened: the action is report")
    assert last.payload.outcome is None  # a refusal never records an outcome

    # supervisor refusals keep who tried, when that is an identifier at all
    session.escalate("核实")
    with pytest.raises(IllegalStep, match="four eyes"):
        session.supervisor_approve(session.teller_id)
    with pytest.raises(IllegalStep, match="identifier"):
        session.supervisor_override("bad id!", Action.PROCEED, "x")
    with pytest.raises(IllegalStep, match="approved as it stands"):
        session.supervisor_approve(supervisor_id="S0009")
    refusals = [s for s in steps_of(audit) if s.step is StepKind.STEP_REFUSED]
    assert [(s.refused_step, s.supervisor_id) for s in refusals[1:]] == [
        ("supervisor_approve", session.teller_id),
        ("supervisor_override", None),
        ("supervisor_approve", "S0009"),
    ]
    # the walk goes on; the steps' own seqs skip the refusals
    session.supervisor_reject("S0009", "疑似诈骗")
    session.record_outcome(Outcome.POLICE_NOTIFIED, confirmed_fraud=True)
    session.close()
    with pytest.raises(IllegalStep, match="closed"):
        session.escalate("again")  # an attempt on a closed session is logged too
    assert steps_of(audit)[-1].refused_step == "escalate"
    assert audit.verify().ok
    report = build_report(audit.records()).total
    assert (report.refusals, report.rejections, report.overrides, report.escalations) == (
        5,
        1,
        0,
        1,
    )
    assert report.by_outcome["police_notified"].count == 1


def test_a_refusal_is_raised_even_when_the_audit_write_fails(audit: AuditLog) -> None:
    session = CounterSession.open(guard(STARTER), involved_payee(), clock=Clock(), audit=audit)
    before = session.to_json()

    def broken(*args: object, **kwargs: object) -> list[int]:
        raise OSError("disk full")

    audit.append = broken  # type: ignore[method-assign]
    with pytest.raises(IllegalStep) as refused:
        session.record_outcome(Outcome.EXECUTED)
    assert isinstance(refused.value.audit_error, OSError) and refused.value.audit_seq is None
    assert any("audit log" in note for note in refused.value.__notes__)
    assert session.to_json() == before


def test_refusals_without_an_audit_log_change_nothing() -> None:
    clock = Clock()
    session = CounterSession.open(guard(STARTER), involved_payee(), clock=clock)
    before, now = session.to_json(), clock.now
    with pytest.raises(IllegalStep) as refused:
        session.record_outcome(Outcome.EXECUTED)
    assert refused.value.audit_seq is None and refused.value.audit_error is None
    assert session.to_json() == before and clock.now == now  # not even the clock was read


NAME = "张伟"
ID_NUMBER = "110101195001011234"
PHONE = "13800138000"
PAYEE_ACCOUNT = "6217000010012345678"
PAYEE_NAME = "林晓峰"


def _files(path: Path) -> bytes:
    return b"".join(
        Path(str(path) + suffix).read_bytes()
        for suffix in ("", "-wal", "-shm")
        if Path(str(path) + suffix).exists()
    )


def test_personal_data_in_answers_and_reasons_never_reaches_the_log(
    audit: AuditLog, audit_path: Path
) -> None:
    customer = {
        "id": "C-ZW",
        "birth_date": "1950-01-01",
        "name": NAME,
        "id_number": ID_NUMBER,
        "phone": PHONE,
    }
    payee = {"account": PAYEE_ACCOUNT, "name": PAYEE_NAME, "region": "CN-YN"}
    said = f"{NAME}说{PAYEE_NAME}是公安，让他把钱转到安全账户{PAYEE_ACCOUNT}"
    session = CounterSession.open(
        guard(FULL),
        event(event_id="evt-pii", customer=customer, counterparty=payee),
        clock=Clock(),
        audit=audit,
    )
    session.ask_questions(["purpose_detail", "knows_payee"])
    session.record_answers({"purpose_detail": f"{said}，身份证{ID_NUMBER}，电话{PHONE}"})
    with pytest.raises(IllegalStep, match="already answered"):  # the refusal quotes the answer
        session.record_answers({"purpose_detail": said})
    session.record_observations(["on_phone"])
    session.teller_raise(Action.REPORT, f"{NAME}一直在和自称{PAYEE_NAME}的人通话")
    session.deliver_notice()
    session.escalate(f"{NAME}（{PHONE}）坚持转账到{PAYEE_ACCOUNT}")
    session.supervisor_reject("S0009", f"核对{NAME}身份证{ID_NUMBER}，收款人{PAYEE_NAME}涉诈")
    session.record_outcome(
        Outcome.POLICE_NOTIFIED,
        confirmed_fraud=True,
        note=f"已报警，{NAME}的电话{PHONE}，收款账户{PAYEE_ACCOUNT}",
    )
    session.close()
    raw = (NAME, ID_NUMBER, PHONE, PAYEE_ACCOUNT, PAYEE_NAME)
    # the values did reach the session, so the log had the chance to leak them
    assert all(value in session.to_json() for value in raw)
    reasons = " ".join(s.reason for s in steps_of(audit))
    assert reasons.count("[h:") >= 8  # replaced by keyed hashes, not dropped
    assert Path(str(audit_path) + "-wal").exists()  # scan while records sit in the WAL
    for data in (_files(audit_path),):
        for value in raw:
            assert value.encode() not in data, f"{value!r} leaked into the audit log"
    audit.close()
    data = _files(audit_path)
    assert len(data) > 10_000
    for value in raw:
        assert value.encode() not in data, f"{value!r} leaked into the audit log"
