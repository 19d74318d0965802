"""The record of a closed counter session, summarised for audit reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from guardrail.counter.entries import StepEntry
from guardrail.counter.errors import IllegalStep
from guardrail.counter.record import OverrideRecord, SessionRecord
from guardrail.counter.states import Step
from guardrail.model.decision import Obligation
from guardrail.model.session import prevented

if TYPE_CHECKING:
    from guardrail.counter.session import CounterSession


def _steps(session: CounterSession, *kinds: Step) -> list[StepEntry]:
    return [entry for entry in session.steps if entry.step in kinds]


def closed_record(session: CounterSession) -> SessionRecord:
    """The audit record of a closed session."""
    if not session.closed:
        raise IllegalStep("record", session.state.value, "only a closed session has a record")
    outcome_step = _steps(session, Step.RECORD_OUTCOME)[-1]
    changes = _steps(session, Step.TELLER_RAISE, Step.SUPERVISOR_REJECT, Step.SUPERVISOR_OVERRIDE)
    overrides = tuple(
        OverrideRecord(
            step=e.step.value,
            by_role=e.actor_role,
            by_id=e.actor_id,
            from_action=e.action_before,
            to_action=e.override_to or e.action_after,
            reason=e.reason,
            at=e.at,
        )
        for e in changes
    )
    decided_by: Literal["rules", "teller", "supervisor"] = "rules"
    decided_by_id: str | None = None
    for entry in session.steps[: session.steps.index(outcome_step)]:
        if entry.action_after != entry.action_before or entry.step in (
            Step.SUPERVISOR_APPROVE,
            Step.SUPERVISOR_OVERRIDE,
            Step.SUPERVISOR_REJECT,
        ):
            if entry.decision is not None:
                decided_by, decided_by_id = "rules", None
            else:
                decided_by, decided_by_id = entry.actor_role, entry.actor_id
    rule_ids = tuple(dict.fromkeys(h.rule_id for d in session.decisions for h in d.hits))
    obligations = {o for d in session.decisions for o in d.obligations}
    opened, closed = session.steps[0].at, session.steps[-1].at
    assert outcome_step.outcome is not None
    return SessionRecord(
        session_id=session.session_id,
        event_id=session.event.event_id,
        pack=session.pack,
        branch_id=session.event.branch.id,
        teller_id=session.teller_id,
        supervisor_ids=session.supervisor_ids,
        kind=session.event.kind,
        amount=session.event.amount,
        amount_fen=session.event.amount.fen,
        first_action=session.decisions[0].action,
        highest_action=max(e.action_after for e in session.steps),
        final_action=outcome_step.action_after,
        decided_by=decided_by,
        decided_by_id=decided_by_id,
        rule_ids=rule_ids,
        obligations=tuple(o for o in Obligation if o in obligations),
        questions_asked=session.questions_asked,
        questions_answered=tuple(session.answers),
        notice_delivered=session.notice is not None,
        notice_acknowledged=session.notice_acknowledged,
        risk_acknowledged=session.risk_acknowledged,
        escalations=len(_steps(session, Step.ESCALATE)),
        overrides=overrides,
        outcome=outcome_step.outcome,
        prevented=prevented(outcome_step.outcome),
        confirmed_fraud=outcome_step.confirmed_fraud,
        screenings=len(session.decisions),
        steps=len(session.steps),
        opened_at=opened,
        closed_at=closed,
        duration_seconds=(closed - opened).total_seconds(),
    )
