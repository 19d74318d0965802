"""What a counter session is made of: each applied step as it happened, and the texts handed to
the customer. Plain data, serialised with the session."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from guardrail.counter.questions import AnswerValue
from guardrail.counter.states import State, Step
from guardrail.model.decision import Action
from guardrail.model.session import Outcome

Role = Literal["teller", "supervisor"]


class Notice(BaseModel):
    """The text handed to the customer to read and sign."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title_zh: str
    title_en: str
    text_zh: str
    text_en: str
    requires_signature: bool = True


class StepEntry(BaseModel):
    """One applied step, as it happened. Never changed once appended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    step: Step
    at: dt.datetime
    actor_role: Role
    actor_id: str
    state_before: State
    state_after: State
    action_before: Action
    action_after: Action
    decision: int | None = None  # index in ``CounterSession.decisions`` of a new screening
    question_ids: tuple[str, ...] = ()
    answers: dict[str, AnswerValue] = Field(default_factory=dict)
    lexicons: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # question -> lexicons
    observations: tuple[str, ...] = ()
    notice: Notice | None = None
    override_to: Action | None = None
    outcome: Outcome | None = None
    confirmed_fraud: bool | None = None
    reason: str = ""
    audit_seqs: tuple[int, ...] = ()
