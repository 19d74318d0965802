"""Writing session steps to a journal (``guardrail.model.StepJournal``, e.g. the audit log).

Each session step becomes one ``SessionStep`` of its own kind (:data:`AUDIT_KIND`); a step that
re-screened the event also writes the new decision. Both go in one batch, so the journal holds
all of a step or none of it. A refused attempt becomes one ``step_refused``
record naming the attempted step; the session itself is unchanged. Every record is built with
the case's event, so the customer's and payee's names and numbers are redacted from reasons
and free-text answers.
"""

from __future__ import annotations

import datetime as dt

from pydantic import TypeAdapter, ValidationError

from guardrail.counter.states import Step
from guardrail.model.decision import Action, Decision
from guardrail.model.event import Answers, Event, Identifier
from guardrail.model.session import ACTION_CHANGE_KINDS, SessionStep, StepJournal, StepKind

# The audit kind of each session step; None: the decision record is the whole entry.
AUDIT_KIND: dict[Step, StepKind | None] = {
    Step.OPEN: None,
    Step.ASK_QUESTIONS: StepKind.QUESTIONS_ASKED,
    Step.RECORD_ANSWERS: StepKind.ANSWERS_RECORDED,
    Step.RECORD_OBSERVATIONS: StepKind.OBSERVATIONS_RECORDED,
    Step.DELIVER_NOTICE: StepKind.NOTICE_DELIVERED,
    Step.ACKNOWLEDGE_NOTICE: StepKind.NOTICE_ACKNOWLEDGED,
    Step.SIGN_RISK_ACKNOWLEDGEMENT: StepKind.RISK_ACKNOWLEDGED,
    Step.TELLER_RAISE: StepKind.TELLER_OVERRIDE,
    Step.ESCALATE: StepKind.ESCALATED,
    Step.SUPERVISOR_APPROVE: StepKind.SUPERVISOR_APPROVED,
    Step.SUPERVISOR_REJECT: StepKind.SUPERVISOR_REJECTED,
    Step.SUPERVISOR_OVERRIDE: StepKind.SUPERVISOR_OVERRIDE,
    Step.RECORD_OUTCOME: StepKind.OUTCOME_RECORDED,
    Step.CLOSE: StepKind.CLOSED,
}

_ENDING = (StepKind.OUTCOME_RECORDED, StepKind.CLOSED)
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


def write_step(
    journal: StepJournal,
    *,
    case_id: str,
    step: Step,
    event: Event,
    decision: Decision | None,
    at: dt.datetime,
    teller_id: str,
    supervisor_id: str | None,
    override_from: Action | None,
    override_to: Action | None,
    reason: str,
    question_ids: tuple[str, ...],
    answers: Answers | None,
    outcome: str | None,
    confirmed_fraud: bool | None,
    with_amount: bool,
) -> tuple[int, ...]:
    """Append the records of one step in one batch; returns their seqs."""
    kind = AUDIT_KIND[step]
    entry: SessionStep | None = None
    if kind is not None:
        changes_action = kind in ACTION_CHANGE_KINDS
        ending = kind in _ENDING
        entry = SessionStep(
            case_id=case_id,
            kind=kind,
            at=at,
            teller_id=teller_id,
            supervisor_id=supervisor_id,
            event_id=event.event_id,
            outcome=outcome if ending else None,
            confirmed_fraud=confirmed_fraud if ending else None,
            override_from=override_from if changes_action else None,
            override_to=override_to if changes_action else None,
            reason=reason,
            question_ids=question_ids,
            answers=answers,
            amount=event.amount if with_amount else None,
            event=event,
        )
    return journal.record_step(
        entry, event=event, case_id=case_id, decision=decision, supervisor_id=supervisor_id
    )


def write_refusal(
    journal: StepJournal,
    *,
    case_id: str,
    step: str,
    state: str,
    reason: str,
    event: Event,
    at: dt.datetime,
    teller_id: str,
    supervisor_id: str | None,
) -> int:
    """Append one ``step_refused`` record for an attempt the session refused; returns its seq.
    ``supervisor_id`` is kept only when it is a valid identifier (the refusal may be that it
    is not)."""
    refusal = SessionStep(
        case_id=case_id,
        kind=StepKind.STEP_REFUSED,
        at=at,
        teller_id=teller_id,
        supervisor_id=_valid_identifier(supervisor_id),
        event_id=event.event_id,
        reason=f"refused in state {state}: {reason}",
        refused_step=step,
        event=event,
    )
    return journal.record_step(refusal, event=event, case_id=case_id)[0]


def _valid_identifier(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return _IDENTIFIER.validate_python(value)
    except ValidationError:
        return None
