"""Writing session steps to the audit log (``guardrail.audit``).

Each session step becomes one ``SessionStepRecord``; a step that re-screened the event also
writes the new ``DecisionRecord``. Both go in one batch, so the log holds all of a step or
none of it. The audit log's ``StepKind`` has fewer kinds than the session has steps; a step
without its own kind is written under the nearest one, and its reason starts with the
session's step name (``teller_raise: ...``) so nothing is lost. When the audit package adds a
kind spelled like the step (e.g. ``observations_recorded``), it is used instead.
"""

from __future__ import annotations

import datetime as dt

from guardrail.audit.log import AuditLog
from guardrail.audit.records import DecisionRecord, SessionStepRecord, StepKind
from guardrail.counter.states import Step
from guardrail.model.decision import Action, Decision
from guardrail.model.event import Answers, Event

# The nearest audit kind for each session step; None: the decision record is the whole entry.
NEAREST: dict[Step, StepKind | None] = {
    Step.OPEN: None,
    Step.ASK_QUESTIONS: StepKind.QUESTIONS_ASKED,
    Step.RECORD_ANSWERS: StepKind.ANSWERS_RECORDED,
    Step.RECORD_OBSERVATIONS: StepKind.ANSWERS_RECORDED,
    Step.DELIVER_NOTICE: StepKind.NOTICE_DELIVERED,
    Step.ACKNOWLEDGE_NOTICE: StepKind.ACKNOWLEDGED,
    Step.SIGN_RISK_ACKNOWLEDGEMENT: StepKind.ACKNOWLEDGED,
    Step.TELLER_RAISE: StepKind.ESCALATED,  # a raise climbs the escalation ladder
    Step.ESCALATE: StepKind.ESCALATED,
    Step.SUPERVISOR_APPROVE: StepKind.SUPERVISOR_OVERRIDE,  # from == to: approved as it stands
    Step.SUPERVISOR_REJECT: StepKind.SUPERVISOR_OVERRIDE,
    Step.SUPERVISOR_OVERRIDE: StepKind.SUPERVISOR_OVERRIDE,
    Step.RECORD_OUTCOME: StepKind.OUTCOME_RECORDED,
    Step.CLOSE: StepKind.CLOSED,
}

_EXACT = {
    Step.RECORD_OBSERVATIONS: "observations_recorded",
    Step.ACKNOWLEDGE_NOTICE: "notice_acknowledged",
    Step.SIGN_RISK_ACKNOWLEDGEMENT: "risk_acknowledged",
    Step.TELLER_RAISE: "teller_override",
    Step.SUPERVISOR_APPROVE: "supervisor_approved",
    Step.SUPERVISOR_REJECT: "supervisor_rejected",
}
_KNOWN = {kind.value for kind in StepKind}


def audit_kind(step: Step) -> tuple[StepKind | None, bool]:
    """The audit kind for ``step`` and whether it is the step's own kind (not the nearest)."""
    exact = _EXACT.get(step, step.value)
    if exact in _KNOWN:
        return StepKind(exact), True
    nearest = NEAREST[step]
    return nearest, nearest is not None and nearest.value == step.value


def write_step(
    audit: AuditLog,
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
    batch: list[DecisionRecord | SessionStepRecord] = []
    if decision is not None:
        batch.append(
            audit.decision_record(event, decision, case_id=case_id, supervisor_id=supervisor_id)
        )
    kind, exact = audit_kind(step)
    if kind is not None:
        shown_reason = reason if exact else f"{step.value}: {reason}".rstrip(": ").rstrip()
        is_override = kind is StepKind.SUPERVISOR_OVERRIDE
        batch.append(
            audit.session_step_record(
                case_id,
                kind,
                at=at,
                teller_id=teller_id,
                supervisor_id=supervisor_id,
                event_id=event.event_id,
                outcome=outcome if kind in (StepKind.OUTCOME_RECORDED, StepKind.CLOSED) else None,
                confirmed_fraud=confirmed_fraud
                if kind in (StepKind.OUTCOME_RECORDED, StepKind.CLOSED)
                else None,
                override_from=override_from if is_override else None,
                override_to=override_to if is_override else None,
                reason=shown_reason,
                question_ids=question_ids,
                answers=answers,
                amount=event.amount if with_amount else None,
            )
        )
    return tuple(audit.append(batch))
