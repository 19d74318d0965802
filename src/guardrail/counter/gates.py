"""The gates: when an outcome may be recorded. All of them are here, in one place.

Executing the request (outcome ``executed``) needs, by the effective action:

=============== ==========================================================================
proceed         nothing more
notice          the notice delivered, and acknowledged when it asks for a signature
inquire         as notice, and every question asked answered
review, hold    a supervisor's approval (or override) in force for this action, the notice
                delivered and acknowledged, and the customer's signed risk acknowledgement
intercept,      never: a supervisor must first override the action down, with a reason
report
=============== ==========================================================================

and, at every level, no escalation waiting for the supervisor.

The other outcomes stop the money; they need the case to be serious enough:
``withdrawn_after_dissuasion`` is the customer's own choice and always allowed;
``protective_stop_payment`` needs at least ``hold``; ``intercepted`` and ``police_notified``
need at least ``intercept`` (a teller may raise the action first; a supervisor's rejection
raises it to ``intercept``).
"""

from __future__ import annotations

from dataclasses import dataclass

from guardrail.counter.outcome import Outcome
from guardrail.model.decision import Action


@dataclass(frozen=True)
class GateView:
    """What the gates look at, taken from the session."""

    action: Action
    waiting_for_supervisor: bool
    unanswered: tuple[str, ...]
    notice_delivered: bool
    notice_acknowledged: bool
    notice_requires_signature: bool
    risk_acknowledged: bool
    approved_up_to: Action | None  # the supervisor's approval in force, if any


MIN_ACTION: dict[Outcome, Action] = {
    Outcome.WITHDRAWN_AFTER_DISSUASION: Action.PROCEED,
    Outcome.PROTECTIVE_STOP_PAYMENT: Action.HOLD,
    Outcome.INTERCEPTED: Action.INTERCEPT,
    Outcome.POLICE_NOTIFIED: Action.INTERCEPT,
}


def outcome_refusal(view: GateView, outcome: Outcome) -> str | None:
    """Why ``outcome`` may not be recorded now, or None when it may."""
    if outcome is Outcome.EXECUTED:
        return execute_refusal(view)
    needed = MIN_ACTION[outcome]
    if view.action < needed:
        return (
            f"outcome {outcome.value} needs the action to be at least {needed.value}, it is "
            f"{view.action.value}; raise the action first (a teller may raise it, with a reason)"
        )
    return None


def execute_refusal(view: GateView) -> str | None:
    """Why the request may not be executed now, or None when it may."""
    action = view.action
    if view.waiting_for_supervisor:
        return "the case is escalated: wait for the supervisor to approve, reject or override"
    if action >= Action.INTERCEPT:
        return (
            f"the action is {action.value}: executing needs a supervisor's override lowering "
            "the action, with a reason"
        )
    missing: list[str] = []
    if action >= Action.REVIEW and (view.approved_up_to is None or view.approved_up_to < action):
        missing.append(f"a supervisor's approval for {action.value} (escalate first)")
    if action >= Action.NOTICE:
        if not view.notice_delivered:
            missing.append("the anti-fraud notice delivered")
        elif view.notice_requires_signature and not view.notice_acknowledged:
            missing.append("the customer's signed acknowledgement of the notice")
    if action is Action.INQUIRE and view.unanswered:
        missing.append("answers to the questions asked: " + ", ".join(view.unanswered))
    if action >= Action.REVIEW and not view.risk_acknowledged:
        missing.append("the customer's signed risk acknowledgement (the customer insists)")
    if missing:
        return f"the action is {action.value}; executing still needs " + "; ".join(missing)
    return None
