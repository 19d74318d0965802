"""Each kind of illegal step is refused with a clear error and changes nothing; overrides are
kept; the hard floor holds; the outcome gates."""

from __future__ import annotations

import datetime as dt

import pytest
from counter_factory import (
    FULL,
    STARTER,
    case_001,
    case_003,
    clock,
    elderly_cash_on_phone,
    event,
    guard,
    involved_payee,
)

from guardrail.counter import (
    CounterSession,
    IllegalStep,
    Outcome,
    State,
    Step,
    StepEntry,
)
from guardrail.counter.policy import effective_action
from guardrail.model import Action, Decision, Hit, PackRef


def refused(session: CounterSession, call, *args, match: str = "", **kwargs) -> IllegalStep:
    """Call a step that must be refused; check the session did not change."""
    before = session.to_json()
    with pytest.raises(IllegalStep, match=match) as info:
        call(*args, **kwargs)
    assert session.to_json() == before
    error = info.value
    assert error.step and error.state == session.state.value and error.reason
    assert error.step in str(error) and error.state in str(error)
    return error


def open_(ev=None, pack=STARTER) -> CounterSession:
    return CounterSession.open(guard(pack), ev or case_003(), clock=clock())


def test_close_without_outcome_is_refused() -> None:
    session = open_()
    error = refused(session, session.close, match="only after its outcome")
    assert error.step == "close" and error.state == "opened"


def test_answering_a_question_not_asked_is_refused() -> None:
    session = open_()
    refused(session, session.record_answer, "purpose", "investment", match="was not asked")
    session.ask_questions(["purpose"])
    refused(session, session.record_answer, "family_aware", True, match="was not asked")
    refused(session, session.record_answer, "no_such_question", True, match="was not asked")


def test_asking_unknown_or_twice_is_refused() -> None:
    session = open_()
    refused(session, session.ask_questions, ["nope"], match="unknown question 'nope'")
    session.ask_questions(["purpose"])
    refused(session, session.ask_questions, ["purpose"], match="already asked")
    refused(session, session.ask_questions, [], match="no question named")


def test_answers_are_never_overwritten() -> None:
    session = open_()
    session.ask_questions(["purpose"])
    session.record_answer("purpose", "investment")
    refused(session, session.record_answer, "purpose", "house_purchase", match="never overwritten")


@pytest.mark.parametrize(
    ("question", "value", "match"),
    [
        ("knows_payee", "yes", "expects yes/no"),
        ("knows_payee", 1, "expects yes/no"),
        ("purpose", "buying_a_boat", "expects one of"),
        ("relationship", "cousin", "expects one of"),
        ("purpose_detail", "   ", "empty"),
        ("purpose_detail", 42, "expects free text"),
        ("promised_return", -1, "from 0 to"),
        ("promised_return", True, "whole number"),
        ("promised_return", "30", "whole number"),
    ],
)
def test_answers_are_validated_against_their_type(question, value, match) -> None:
    session = open_(pack=FULL)
    session.ask_questions([question])
    refused(session, session.record_answer, question, value, match=match)


def test_default_questions_come_from_hit_rules_and_the_action() -> None:
    session = open_(elderly_cash_on_phone())  # elderly-large-cash: inquire, asks the four
    assert session.action is Action.INQUIRE
    assert session.questions_to_ask() == ("purpose", "knows_payee", "instructed", "family_aware")
    assert session.ask_questions() == ("purpose", "knows_payee", "instructed", "family_aware")
    assert session.questions_to_ask() == ()
    refused(session, session.ask_questions, match="no question is waiting")
    legit = open_(case_001())
    assert legit.questions_to_ask() == ()


def test_inquire_gate_needs_answers_and_the_signed_notice() -> None:
    session = open_(elderly_cash_on_phone())
    session.ask_questions()
    refused(session, session.record_outcome, Outcome.EXECUTED, match="notice delivered")
    session.deliver_notice()
    refused(session, session.record_outcome, Outcome.EXECUTED, match="signed acknowledgement")
    session.acknowledge_notice()
    refused(session, session.record_outcome, Outcome.EXECUTED, match="answers to the questions")
    session.record_answers({"purpose": "living_expenses", "knows_payee": True, "instructed": False})
    refused(session, session.record_outcome, Outcome.EXECUTED, match="family_aware")
    session.record_answer("family_aware", True)
    assert session.action is Action.INQUIRE
    session.record_outcome(Outcome.EXECUTED)
    assert session.state is State.OUTCOME


def test_notice_steps_in_order() -> None:
    session = open_()
    refused(session, session.acknowledge_notice, match="deliver the notice")
    refused(session, session.sign_risk_acknowledgement, match="deliver the anti-fraud notice")
    notice = session.deliver_notice()
    assert notice.id == "anti_fraud_notice" and notice.text_zh
    assert session.state is State.NOTIFIED
    refused(session, session.deliver_notice, match="already delivered")
    session.acknowledge_notice()
    refused(session, session.acknowledge_notice, match="already acknowledged")
    risk = session.sign_risk_acknowledgement()
    assert risk.text_zh
    refused(session, session.sign_risk_acknowledgement, match="already signed")


def test_teller_can_only_raise_and_the_raise_is_kept() -> None:
    session = open_(case_001())
    start = session.action
    refused(session, session.teller_raise, start, "same", match="can only raise")
    refused(session, session.teller_raise, Action.HOLD, "  ", match="reason is required")
    refused(session, session.teller_raise, "sideways", "x", match="unknown action")
    assert session.teller_raise(Action.HOLD, "客户神色慌张，一直看手机") is Action.HOLD
    refused(session, session.teller_raise, Action.REVIEW, "lower", match="can only raise")
    entry = session.steps[-1]
    assert entry.step is Step.TELLER_RAISE and entry.actor_role == "teller"
    assert (entry.action_before, entry.action_after) == (start, Action.HOLD)
    assert entry.reason == "客户神色慌张，一直看手机"
    # A re-screen that finds nothing new keeps the raise.
    session.record_observations(["nervous"])
    assert session.action is Action.HOLD


def test_supervisor_steps_need_an_escalation_and_another_person() -> None:
    session = open_(involved_payee())
    assert session.action is Action.REPORT
    refused(session, session.supervisor_approve, "S1", match="escalate first")
    refused(session, session.supervisor_override, "S1", Action.PROCEED, "ok", match="escalate")
    session.escalate("收款账户涉案")
    assert session.state is State.ESCALATED
    refused(session, session.escalate, match="waiting for the supervisor")
    refused(session, session.supervisor_override, "T0001", "proceed", "x", match="four eyes")
    refused(session, session.supervisor_override, "bad id!", "proceed", "x", match="identifier")
    refused(session, session.supervisor_override, "S1", "proceed", "", match="reason is required")
    refused(session, session.supervisor_override, "S1", "report", "x", match="approve instead")
    refused(session, session.record_outcome, "executed", match="wait for the supervisor")


def test_supervisor_override_lowers_is_kept_and_new_rules_raise_again() -> None:
    session = open_(involved_payee())
    session.escalate()
    session.supervisor_override("S0002", Action.PROCEED, "已与公安核实，账户已解除涉案")
    assert session.state is State.DECIDED
    assert session.action is Action.PROCEED
    # The involved-account hit is covered by the override; a re-screen keeps it covered...
    session.record_observations(["hurried"])
    assert "payee-involved-account" in session.decision.rule_ids
    assert session.action is Action.PROCEED
    # ...but a rule first hit after the override raises the action again.
    session.record_observations(["on_phone"])
    assert "on-phone-while-transacting" in session.decision.rule_ids
    assert session.action is Action.REVIEW
    override = next(e for e in session.steps if e.step is Step.SUPERVISOR_OVERRIDE)
    assert override.actor_id == "S0002" and override.reason.startswith("已与公安核实")
    assert (override.action_before, override.override_to) == (Action.REPORT, Action.PROCEED)


def test_hard_rule_is_never_lowered_by_answers() -> None:
    session = open_(involved_payee())
    session.ask_questions(["purpose", "knows_payee", "instructed", "family_aware"])
    session.record_answers(
        {
            "purpose": "family_support",
            "knows_payee": True,
            "instructed": False,
            "family_aware": True,
        }
    )
    assert session.action is Action.REPORT
    refused(session, session.record_outcome, Outcome.EXECUTED, match="override")


def test_supervisor_reject_raises_to_intercept() -> None:
    session = open_(case_001())
    session.escalate("客户情绪激动")
    assert session.supervisor_reject("S0003", "需本人携带合同再办") is Action.INTERCEPT
    refused(session, session.record_outcome, Outcome.EXECUTED, match="override")
    session.record_outcome(Outcome.INTERCEPTED)
    record = session.close()
    assert record.decided_by == "supervisor" and record.prevented


def test_supervisor_approval_lapses_when_the_action_rises() -> None:
    session = open_(event(event_id="evt-r", amount={"value": "20000.00", "currency": "CNY"}))
    session.record_observations(["on_phone"])
    assert session.action is Action.REVIEW
    session.escalate()
    session.supervisor_approve("S0004", "客户在和家人通话，已核实")
    session.deliver_notice()
    session.acknowledge_notice()
    session.sign_risk_acknowledgement()
    assert session.can_execute() is None
    session.teller_raise(Action.HOLD, "客户改口")
    assert "approval for hold" in (session.can_execute() or "")


@pytest.mark.parametrize(
    ("outcome", "needed"),
    [
        (Outcome.INTERCEPTED, Action.INTERCEPT),
        (Outcome.POLICE_NOTIFIED, Action.INTERCEPT),
        (Outcome.PROTECTIVE_STOP_PAYMENT, Action.HOLD),
    ],
)
def test_stopping_outcomes_need_a_serious_enough_action(outcome, needed) -> None:
    session = open_(case_001())
    refused(session, session.record_outcome, outcome, match=f"at least {needed.value}")
    session.teller_raise(needed, "teller judgement")
    session.record_outcome(outcome)
    assert session.outcome is outcome


def test_withdrawn_is_always_allowed_and_never_recorded_in_history() -> None:
    g = guard()
    session = CounterSession.open(g, case_001(), clock=clock())
    session.record_outcome("withdrawn_after_dissuasion")
    session.close()
    assert len(g.history) == 0


def test_closed_session_refuses_everything() -> None:
    session = open_(case_001())
    refused(session, session.record_outcome, "lost", match="unknown outcome")
    session.record_outcome(Outcome.EXECUTED)
    refused(session, session.record_observations, ["nervous"], match="only 'close' remains")
    refused(session, session.record_outcome, Outcome.EXECUTED, match="only 'close' remains")
    session.close()
    for call, args in [
        (session.ask_questions, (["purpose"],)),
        (session.record_observations, (["nervous"],)),
        (session.deliver_notice, ()),
        (session.escalate, ()),
        (session.teller_raise, (Action.REPORT, "x")),
        (session.record_outcome, (Outcome.INTERCEPTED,)),
        (session.close, ()),
    ]:
        refused(session, call, *args, match="closed")


def test_observations_are_checked() -> None:
    session = open_()
    refused(session, session.record_observations, ["telepathy"], match="unknown observation")
    session.record_observations(["nervous"])
    refused(session, session.record_observations, ["nervous"], match="nothing new")


def _decision(*hits: tuple[str, Action, tuple[str, ...]]) -> Decision:
    return Decision(
        event_id="e",
        action=max((a for _, a, _ in hits), default=Action.PROCEED),
        hits=tuple(Hit(rule_id=r, title_zh=r, title_en=r, action=a, tags=t) for r, a, t in hits),
        pack=PackRef(name="p", version="1", content_hash="h"),
        backend="reference",
    )


def _entry(seq: int, step: Step, decision: int | None = None, to: Action | None = None):
    return StepEntry(
        seq=seq,
        step=step,
        at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        actor_role="teller",
        actor_id="T",
        state_before=State.OPENED,
        state_after=State.OPENED,
        action_before=Action.PROCEED,
        action_after=Action.PROCEED,
        decision=decision,
        override_to=to,
    )


def test_effective_action_answer_driven_hits_may_be_withdrawn_hard_hits_may_not() -> None:
    decisions = [
        _decision(("hard", Action.REVIEW, ("watchlist",))),
        _decision(("soft", Action.HOLD, ("answers",))),
        _decision(),  # later answers: neither rule fires any more
    ]
    steps = [_entry(1, Step.OPEN, 0), _entry(2, Step.RECORD_ANSWERS, 1)]
    assert effective_action(steps, decisions) is Action.HOLD
    steps.append(_entry(3, Step.RECORD_ANSWERS, 2))
    assert effective_action(steps, decisions) is Action.REVIEW  # the hard floor stays
    steps.append(_entry(4, Step.SUPERVISOR_OVERRIDE, to=Action.NOTICE))
    assert effective_action(steps, decisions) is Action.NOTICE
    steps.append(_entry(5, Step.TELLER_RAISE, to=Action.INQUIRE))
    assert effective_action(steps, decisions) is Action.INQUIRE
