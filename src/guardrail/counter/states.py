"""The counter session's state machine: its states, its steps, and the one table of which
step may be taken in which state (and where it leads).

    opened ─▶ questioning ─▶ notified ─▶ escalated ─▶ decided ─▶ outcome ─▶ closed
      └──────────┴──────────────┴─────────────┴───────────┴───────▲
                       (an outcome may be recorded from any open state; its gate decides)

The table says only whether a step makes sense *in a state*. Whether it is allowed *now*
(e.g. executing an intercepted request) is decided by the gates in ``counter.gates``.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    OPENED = "opened"  # screened; nothing asked yet
    QUESTIONING = "questioning"  # questions asked, answers being recorded
    NOTIFIED = "notified"  # the anti-fraud notice was handed over
    ESCALATED = "escalated"  # waiting for the supervisor
    DECIDED = "decided"  # the supervisor approved, rejected or overrode
    OUTCOME = "outcome"  # how it ended is recorded; only closing remains
    CLOSED = "closed"  # final; nothing more can happen


class Step(StrEnum):
    OPEN = "open"
    ASK_QUESTIONS = "ask_questions"
    RECORD_ANSWERS = "record_answers"
    RECORD_OBSERVATIONS = "record_observations"
    DELIVER_NOTICE = "deliver_notice"
    ACKNOWLEDGE_NOTICE = "acknowledge_notice"
    SIGN_RISK_ACKNOWLEDGEMENT = "sign_risk_acknowledgement"
    TELLER_RAISE = "teller_raise"
    ESCALATE = "escalate"
    SUPERVISOR_APPROVE = "supervisor_approve"
    SUPERVISOR_REJECT = "supervisor_reject"
    SUPERVISOR_OVERRIDE = "supervisor_override"
    RECORD_OUTCOME = "record_outcome"
    CLOSE = "close"


# Steps the teller can take while the case is open, and the state each leads to: None keeps
# the current state.
_WORKING: dict[Step, State | None] = {
    Step.ASK_QUESTIONS: None,
    Step.RECORD_ANSWERS: None,
    Step.RECORD_OBSERVATIONS: None,
    Step.DELIVER_NOTICE: State.NOTIFIED,
    Step.ACKNOWLEDGE_NOTICE: None,
    Step.SIGN_RISK_ACKNOWLEDGEMENT: None,
    Step.TELLER_RAISE: None,
    Step.ESCALATE: State.ESCALATED,
    Step.RECORD_OUTCOME: State.OUTCOME,
}

_SUPERVISOR: dict[Step, State | None] = {
    Step.SUPERVISOR_APPROVE: State.DECIDED,
    Step.SUPERVISOR_REJECT: State.DECIDED,
    Step.SUPERVISOR_OVERRIDE: State.DECIDED,
}

TRANSITIONS: dict[State, dict[Step, State]] = {
    State.OPENED: {
        **{step: target or State.OPENED for step, target in _WORKING.items()},
        Step.ASK_QUESTIONS: State.QUESTIONING,
    },
    State.QUESTIONING: {step: target or State.QUESTIONING for step, target in _WORKING.items()},
    State.NOTIFIED: {step: target or State.NOTIFIED for step, target in _WORKING.items()},
    # While the supervisor is called the teller keeps working the case; the customer may still
    # walk away or the police be called (the gates refuse executing before the supervisor's word).
    State.ESCALATED: {
        **{
            step: target or State.ESCALATED
            for step, target in _WORKING.items()
            if step not in (Step.ESCALATE, Step.DELIVER_NOTICE)
        },
        Step.DELIVER_NOTICE: State.ESCALATED,
        **{step: target or State.ESCALATED for step, target in _SUPERVISOR.items()},
    },
    State.DECIDED: {
        **{step: target or State.DECIDED for step, target in _WORKING.items()},
        Step.DELIVER_NOTICE: State.DECIDED,
    },
    State.OUTCOME: {Step.CLOSE: State.CLOSED},
    State.CLOSED: {},
}

WHY_NOT: dict[State, str] = {
    State.OPENED: "the session has only been screened",
    State.QUESTIONING: "questions are being asked",
    State.NOTIFIED: "the notice has been delivered",
    State.ESCALATED: "the case is waiting for the supervisor",
    State.DECIDED: "the supervisor has decided",
    State.OUTCOME: "the outcome is recorded; only 'close' remains",
    State.CLOSED: "the session is closed; nothing more can be recorded",
}


def next_state(state: State, step: Step) -> State | None:
    """The state ``step`` leads to from ``state``, or None when the table forbids it."""
    return TRANSITIONS[state].get(step)


def allowed_steps(state: State) -> tuple[Step, ...]:
    """Steps the table allows in ``state`` (the gates may still refuse one)."""
    return tuple(TRANSITIONS[state])


def refusal_reason(state: State, step: Step) -> str:
    """Why the table refuses ``step`` in ``state``, naming what is allowed instead."""
    allowed = ", ".join(s.value for s in allowed_steps(state)) or "nothing"
    if step is Step.CLOSE:
        return f"a session closes only after its outcome is recorded ({WHY_NOT[state]})"
    if step in _SUPERVISOR:
        return (
            f"the supervisor decides only on an escalated case ({WHY_NOT[state]}); escalate first"
        )
    return f"{WHY_NOT[state]}; allowed here: {allowed}"
