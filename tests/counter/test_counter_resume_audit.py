"""A session serialises and resumes exactly; with an audit log every step is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from counter_factory import FULL, STARTER, Clock, case_003, guard

from guardrail.audit import AuditKeys, AuditLog, DecisionRecord, SessionStepRecord, StepKind
from guardrail.counter import CounterSession, Outcome, Step
from guardrail.model import Action


def without_timing(text: str) -> dict[str, object]:
    data = json.loads(text)
    for decision in data["decisions"]:
        decision["elapsed_us"] = 0
    return data


def walk_003(session: CounterSession) -> None:
    session.ask_questions(["purpose", "knows_payee"])
    session.record_answers({"purpose": "investment", "knows_payee": False})
    session.record_observations(["nervous"])
    session.deliver_notice()
    session.acknowledge_notice()
    session.escalate("客户坚持")
    session.supervisor_override("S0009", Action.REVIEW, "本人真实投资")
    session.sign_risk_acknowledgement()
    session.record_outcome(Outcome.EXECUTED)
    session.close()


def test_resume_at_every_step_changes_nothing() -> None:
    g = guard(STARTER)
    clock = Clock()
    straight = CounterSession.open(g, case_003(), clock=clock)
    walk_003(straight)

    # The same walk, saved and resumed (a restart of the teller application) after every step.
    g2, clock2 = guard(STARTER), Clock()
    session = CounterSession.open(g2, case_003(), clock=clock2)
    steps = [
        lambda s: s.ask_questions(["purpose", "knows_payee"]),
        lambda s: s.record_answers({"purpose": "investment", "knows_payee": False}),
        lambda s: s.record_observations(["nervous"]),
        lambda s: s.deliver_notice(),
        lambda s: s.acknowledge_notice(),
        lambda s: s.escalate("客户坚持"),
        lambda s: s.supervisor_override("S0009", Action.REVIEW, "本人真实投资"),
        lambda s: s.sign_risk_acknowledgement(),
        lambda s: s.record_outcome(Outcome.EXECUTED),
        lambda s: s.close(),
    ]
    for apply in steps:
        text = session.to_json()
        session = CounterSession.from_json(text, g2, clock=clock2)
        assert session.to_json() == text
        apply(session)
    # Identical but for the screening times the guard measured.
    assert without_timing(session.to_json()) == without_timing(straight.to_json())
    assert session.record() == straight.record()
    assert len(g2.history) == 1


def test_json_is_plain_and_complete() -> None:
    session = CounterSession.open(guard(FULL), case_003(), clock=Clock())
    session.ask_questions(["purpose_detail", "promised_return", "knows_payee"])
    session.record_answers({"purpose_detail": "种树项目，年化收益高", "promised_return": 30})
    data = json.loads(session.to_json())
    assert data["format"] == 1 and data["state"] == "questioning"
    assert [s["step"] for s in data["steps"]] == ["open", "ask_questions", "record_answers"]
    assert data["steps"][-1]["answers"] == {
        "purpose_detail": "种树项目，年化收益高",
        "promised_return": 30,
    }
    resumed = CounterSession.from_json(session.to_json(), guard(FULL))
    assert resumed.answers == session.answers
    assert resumed.unanswered == ("knows_payee",)
    assert resumed.action is session.action is Action.REPORT


def test_resume_with_another_pack_is_refused() -> None:
    session = CounterSession.open(guard(STARTER), case_003(), clock=Clock())
    with pytest.raises(ValueError, match="resume with the same pack"):
        CounterSession.from_json(session.to_json(), guard(FULL))


@pytest.fixture
def audit(tmp_path: Path):
    log = AuditLog.open(
        tmp_path / "audit.db", keys=AuditKeys.from_secret(b"counter-tests-secret-0123456789")
    )
    yield log
    log.close()


def test_every_step_is_written_to_the_audit_log(audit: AuditLog) -> None:
    session = CounterSession.open(guard(STARTER), case_003(), clock=Clock(), audit=audit)
    walk_003(session)
    records = [r.payload for r in audit.records()]
    assert audit.verify().ok
    assert all(r.case_id == session.session_id for r in records)
    decisions = [r for r in records if isinstance(r, DecisionRecord)]
    steps = [r for r in records if isinstance(r, SessionStepRecord)]
    assert len(decisions) == len(session.decisions) == 3  # open, answers, observations
    assert [d.action for d in decisions] == [d.action for d in session.decisions]
    # every session step has its records; their seqs are kept in the step log
    assert all(entry.audit_seqs for entry in session.steps)
    seqs = [seq for entry in session.steps for seq in entry.audit_seqs]
    assert seqs == list(range(1, len(records) + 1))
    kinds = [s.step for s in steps]
    assert kinds[0] is StepKind.QUESTIONS_ASKED and kinds[-1] is StepKind.CLOSED
    assert StepKind.ANSWERS_RECORDED in kinds and StepKind.NOTICE_DELIVERED in kinds
    override = next(s for s in steps if s.step is StepKind.SUPERVISOR_OVERRIDE)
    assert (override.supervisor_id, override.override_from, override.override_to) == (
        "S0009",
        Action.REPORT,
        Action.REVIEW,
    )
    outcome = next(s for s in steps if s.step is StepKind.OUTCOME_RECORDED)
    assert outcome.outcome == Outcome.EXECUTED and outcome.amount == session.event.amount
    answered = next(s for s in steps if s.step is StepKind.ANSWERS_RECORDED)
    assert answered.answers is not None and answered.answers.knows_payee is False


def test_session_works_without_an_audit_log() -> None:
    session = CounterSession.open(guard(STARTER), case_003(), clock=Clock())
    walk_003(session)
    assert all(entry.audit_seqs == () for entry in session.steps)
    assert session.steps[-1].step is Step.CLOSE


def test_a_failed_audit_write_leaves_the_session_unchanged(audit: AuditLog) -> None:
    session = CounterSession.open(guard(STARTER), case_003(), clock=Clock(), audit=audit)
    before = session.to_json()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    audit.append = broken  # type: ignore[method-assign]
    with pytest.raises(OSError):
        session.ask_questions(["purpose"])
    assert session.to_json() == before
