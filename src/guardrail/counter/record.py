"""The one record a closed session yields: everything the audit reports need about the case."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict

from guardrail.counter.outcome import Outcome
from guardrail.model.decision import Action, Obligation, PackRef
from guardrail.model.event import TransactionKind
from guardrail.model.money import Money


class OverrideRecord(BaseModel):
    """One change of the action by a person: a teller's raise, a supervisor's override or
    rejection. Kept whatever its direction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str
    by_role: Literal["teller", "supervisor"]
    by_id: str
    from_action: Action
    to_action: Action
    reason: str
    at: dt.datetime


class SessionRecord(BaseModel):
    """A closed counter session, summarised for audit reports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: str
    event_id: str
    pack: PackRef
    branch_id: str
    teller_id: str
    supervisor_ids: tuple[str, ...]
    kind: TransactionKind
    amount: Money
    amount_fen: int
    first_action: Action  # the first screening's action
    highest_action: Action  # the highest effective action at any point
    final_action: Action  # the effective action when the outcome was recorded
    decided_by: Literal["rules", "teller", "supervisor"]  # who set the final action
    decided_by_id: str | None
    rule_ids: tuple[str, ...]  # every rule hit in any screening, first-hit order
    obligations: tuple[Obligation, ...]
    questions_asked: tuple[str, ...]
    questions_answered: tuple[str, ...]
    notice_delivered: bool
    notice_acknowledged: bool
    risk_acknowledged: bool
    escalations: int
    overrides: tuple[OverrideRecord, ...]
    outcome: Outcome
    prevented: bool
    confirmed_fraud: bool | None
    screenings: int
    steps: int
    opened_at: dt.datetime
    closed_at: dt.datetime
    duration_seconds: float
