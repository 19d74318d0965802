"""Counter-session vocabulary shared by the counter session (which takes the steps) and the
audit log (which records them): how a case ends, the kind of each recorded step, and one
step's fields as a single typed object. Neither package imports the other; both import this."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from guardrail.model.decision import Action, Decision
from guardrail.model.event import Answers, Event
from guardrail.model.money import Money


class Outcome(StrEnum):
    """How a counter case ended."""

    EXECUTED = "executed"  # the transaction went ahead
    WITHDRAWN_AFTER_DISSUASION = "withdrawn_after_dissuasion"
    INTERCEPTED = "intercepted"
    POLICE_NOTIFIED = "police_notified"
    PROTECTIVE_STOP_PAYMENT = "protective_stop_payment"


PREVENTED_OUTCOMES = frozenset(
    {
        Outcome.WITHDRAWN_AFTER_DISSUASION,
        Outcome.INTERCEPTED,
        Outcome.POLICE_NOTIFIED,
        Outcome.PROTECTIVE_STOP_PAYMENT,
    }
)


def prevented(outcome: Outcome | None) -> bool:
    """True when the outcome stopped the money leaving (what audit reports count as prevented)."""
    return outcome in PREVENTED_OUTCOMES


class StepKind(StrEnum):
    """Steps of a counter session after screening, one kind per step.

    New kinds are only ever added: a record's hash covers its stored bytes, never this list,
    so records written before a kind existed keep verifying and keep their meaning.
    """

    QUESTIONS_ASKED = "questions_asked"
    ANSWERS_RECORDED = "answers_recorded"
    OBSERVATIONS_RECORDED = "observations_recorded"  # what the teller saw (on the phone...)
    NOTICE_DELIVERED = "notice_delivered"
    NOTICE_ACKNOWLEDGED = "notice_acknowledged"  # customer signed the anti-fraud notice
    RISK_ACKNOWLEDGED = "risk_acknowledged"  # customer insists and signs the risk acknowledgement
    # Legacy: written by the counter session before the two kinds above existed, for either
    # acknowledgement (its reason then starts with the session step's name). Not written now.
    ACKNOWLEDGED = "acknowledged"
    TELLER_OVERRIDE = "teller_override"  # the teller raised the action (never lowers it)
    ESCALATED = "escalated"
    SUPERVISOR_APPROVED = "supervisor_approved"  # approved as it stands: from == to
    SUPERVISOR_REJECTED = "supervisor_rejected"  # refused: the action rises to >= intercept
    SUPERVISOR_OVERRIDE = "supervisor_override"  # set the action, lower or higher, with a reason
    STEP_REFUSED = "step_refused"  # an attempted step that was refused; nothing changed
    OUTCOME_RECORDED = "outcome_recorded"
    CLOSED = "closed"


# Kinds that carry the action before/after (``override_from``/``override_to``).
ACTION_CHANGE_KINDS = frozenset(
    {
        StepKind.TELLER_OVERRIDE,
        StepKind.SUPERVISOR_APPROVED,
        StepKind.SUPERVISOR_REJECTED,
        StepKind.SUPERVISOR_OVERRIDE,
    }
)
SUPERVISOR_KINDS = frozenset(
    {StepKind.SUPERVISOR_APPROVED, StepKind.SUPERVISOR_REJECTED, StepKind.SUPERVISOR_OVERRIDE}
)


@dataclass(frozen=True, kw_only=True)
class SessionStep:
    """The fields of one counter-session step as the audit log records it.

    Values are checked when the audit log turns the step into a record (strings are accepted
    for the enums). ``event`` is the case's event: it is not stored, it lets the log recognise
    the customer's names and numbers in free text and redact them.
    """

    case_id: str
    kind: StepKind | str
    at: dt.datetime
    teller_id: str
    supervisor_id: str | None = None
    event_id: str | None = None
    outcome: Outcome | str | None = None
    confirmed_fraud: bool | None = None
    override_from: Action | str | None = None
    override_to: Action | str | None = None
    reason: str = ""
    question_ids: Sequence[str] = ()
    answers: Answers | None = None
    amount: Money | None = None
    refused_step: str | None = None  # step_refused only: the name of the attempted step
    event: Event | None = None


class StepJournal(Protocol):
    """Where a counter session writes its steps (``guardrail.audit.AuditLog`` is one)."""

    def record_step(
        self,
        step: SessionStep | None,
        *,
        event: Event,
        case_id: str,
        decision: Decision | None = None,
        supervisor_id: str | None = None,
    ) -> tuple[int, ...]:
        """Write ``decision`` (if any) and ``step`` (if any) in one batch: all or nothing.
        Returns the seqs of the records written."""
        ...
