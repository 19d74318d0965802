"""The two seed cases walked end to end: 003 (fraud intercepted) and 001 (legitimate)."""

from __future__ import annotations

import pytest
from counter_factory import FULL, STARTER, case_001, case_003, clock, guard

from guardrail.counter import CounterSession, IllegalStep, Outcome, State
from guardrail.model import Action


@pytest.mark.parametrize("pack_path", [STARTER, FULL], ids=["starter", "full-questionnaire"])
def test_003_house_purchase_is_really_an_investment(pack_path) -> None:
    g = guard(pack_path)
    session = CounterSession.open(g, case_003(), clock=clock())
    assert session.state is State.OPENED
    first = session.action
    assert first < Action.INTERCEPT  # "buying a house" alone is not a fraud signal

    # The teller runs the four questions (the rules may not have asked for them yet).
    asked = session.ask_questions(["purpose", "knows_payee", "instructed", "family_aware"])
    assert asked == ("purpose", "knows_payee", "instructed", "family_aware")
    assert session.state is State.QUESTIONING
    decision = session.record_answers({"purpose": "investment", "knows_payee": False})
    assert "house-purchase-really-investment" in decision.rule_ids
    assert session.action is Action.REPORT

    # Executing is refused without a supervisor's override...
    with pytest.raises(IllegalStep) as refused:
        session.record_outcome(Outcome.EXECUTED)
    assert refused.value.step == "record_outcome"
    assert "override" in str(refused.value)
    # ...and the teller cannot talk the action down.
    with pytest.raises(IllegalStep, match="can only raise"):
        session.teller_raise(Action.NOTICE, "customer insists")

    # More answers never lower what a hard rule set.
    session.record_answers({"instructed": False, "family_aware": True})
    assert session.action is Action.REPORT

    session.deliver_notice()
    session.acknowledge_notice()
    session.record_outcome(Outcome.POLICE_NOTIFIED, confirmed_fraud=True, note="报警，劝阻成功")
    record = session.close()
    assert session.state is State.CLOSED
    assert record.outcome is Outcome.POLICE_NOTIFIED
    assert record.prevented and record.confirmed_fraud is True
    assert record.final_action is Action.REPORT
    assert record.decided_by == "rules"
    assert "house-purchase-really-investment" in record.rule_ids
    assert record.amount_fen == 30_000_000
    assert record.duration_seconds > 0
    assert len(g.history) == 0  # never executed: history does not count it


def test_003_free_text_answer_goes_through_the_lexicons() -> None:
    session = CounterSession.open(guard(FULL), case_003(), clock=clock())
    session.ask_questions(["purpose", "purpose_detail"])
    session.record_answer("purpose", "house_purchase")  # the customer keeps to the story
    assert session.action < Action.INTERCEPT
    decision = session.record_answer("purpose_detail", "朋友介绍的林业种植项目，说年化收益30%")
    assert "house-purchase-really-investment" in decision.rule_ids
    assert session.action is Action.REPORT
    assert session.steps[-1].lexicons == {"purpose_detail": ("high_return",)}
    assert session.event.answers.purpose_detail == "朋友介绍的林业种植项目，说年化收益30%"


def test_003_number_answer_promised_return() -> None:
    session = CounterSession.open(guard(FULL), case_003(), clock=clock())
    session.ask_questions(["promised_return"])
    session.record_answer("promised_return", 30)
    assert session.action is Action.REPORT
    assert session.event.answers.promised_return_pct == 30


def test_003_executing_needs_a_supervisor_override() -> None:
    session = CounterSession.open(guard(STARTER), case_003(), clock=clock())
    session.ask_questions(["purpose"])
    session.record_answer("purpose", "investment")
    session.escalate("客户坚持办理")
    with pytest.raises(IllegalStep, match="cannot be approved as it stands"):
        session.supervisor_approve("S0009")
    session.supervisor_override("S0009", Action.REVIEW, "核实为本人真实投资，有合同")
    assert session.action is Action.REVIEW
    with pytest.raises(IllegalStep, match="risk acknowledgement"):
        session.record_outcome(Outcome.EXECUTED)
    session.deliver_notice()
    session.acknowledge_notice()
    session.sign_risk_acknowledgement()
    session.record_outcome(Outcome.EXECUTED)
    record = session.close()
    assert record.decided_by == "supervisor" and record.decided_by_id == "S0009"
    assert [(o.by_role, o.from_action, o.to_action) for o in record.overrides] == [
        ("supervisor", Action.REPORT, Action.REVIEW)
    ]
    assert record.overrides[0].reason == "核实为本人真实投资，有合同"
    assert record.supervisor_ids == ("S0009",)
    assert not record.prevented


@pytest.mark.parametrize("pack_path", [STARTER, FULL], ids=["starter", "full-questionnaire"])
def test_001_legitimate_rollover_closes_with_at_most_a_notice(pack_path) -> None:
    g = guard(pack_path)
    session = CounterSession.open(g, case_001(), clock=clock())
    # She is anxious and in a hurry: the teller records it.
    session.record_observations(["hurried", "nervous"])
    assert all(d.action <= Action.NOTICE for d in session.decisions)
    assert session.action <= Action.NOTICE
    if session.action is Action.NOTICE:
        session.deliver_notice()
        session.acknowledge_notice()
    assert session.can_execute() is None
    # Resolved by a product transfer: the request goes ahead.
    session.record_outcome(Outcome.EXECUTED, confirmed_fraud=False, note="理财转让")
    record = session.close()
    assert record.outcome is Outcome.EXECUTED
    assert record.highest_action <= Action.NOTICE
    assert record.escalations == 0 and record.overrides == ()
    assert record.questions_asked == ()
    assert len(g.history) == 1  # executed: history counts it
