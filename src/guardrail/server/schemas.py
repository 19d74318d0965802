"""Request and response bodies of the HTTP API (besides ``Event`` and ``Decision``, which are
the library's own models, so the service answers exactly what ``guardrail screen --json``
prints)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from guardrail.audit.records import PartyRole, Resolution, Verdict
from guardrail.counter import Notice, Outcome, State, Step
from guardrail.model.decision import Action, Decision
from guardrail.model.money import Currency, Money

Reason = Annotated[str, Field(max_length=2000)]
Id = Annotated[str, Field(min_length=1, max_length=100)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AskQuestions(_Body):
    step: Literal["ask_questions"]
    question_ids: Annotated[list[Id], Field(max_length=100)] | None = None


class RecordAnswers(_Body):
    step: Literal["record_answers"]
    answers: Annotated[dict[Id, bool | int | str], Field(min_length=1, max_length=100)]


class RecordObservations(_Body):
    step: Literal["record_observations"]
    observations: Annotated[list[Id], Field(min_length=1, max_length=50)]


class DeliverNotice(_Body):
    step: Literal["deliver_notice"]


class AcknowledgeNotice(_Body):
    step: Literal["acknowledge_notice"]


class SignRiskAcknowledgement(_Body):
    step: Literal["sign_risk_acknowledgement"]


class TellerRaise(_Body):
    step: Literal["teller_raise"]
    to: Action
    reason: Reason


class Escalate(_Body):
    step: Literal["escalate"]
    reason: Reason = ""


class SupervisorApprove(_Body):
    step: Literal["supervisor_approve"]
    reason: Reason = ""


class SupervisorReject(_Body):
    step: Literal["supervisor_reject"]
    reason: Reason


class SupervisorOverride(_Body):
    step: Literal["supervisor_override"]
    to: Action
    reason: Reason


class RecordOutcome(_Body):
    step: Literal["record_outcome"]
    outcome: Outcome
    confirmed_fraud: bool | None = None
    note: Reason = ""


class Close(_Body):
    step: Literal["close"]


StepRequest = Annotated[
    AskQuestions
    | RecordAnswers
    | RecordObservations
    | DeliverNotice
    | AcknowledgeNotice
    | SignRiskAcknowledgement
    | TellerRaise
    | Escalate
    | SupervisorApprove
    | SupervisorReject
    | SupervisorOverride
    | RecordOutcome
    | Close,
    Field(discriminator="step"),
]

SUPERVISOR_STEPS = frozenset(
    {Step.SUPERVISOR_APPROVE, Step.SUPERVISOR_REJECT, Step.SUPERVISOR_OVERRIDE}
)


class StepView(_Body):
    seq: int
    step: Step
    at: str
    actor_role: str
    actor_id: str
    state_after: State
    action_after: Action


class SessionView(_Body):
    """A counter session as the teller software shows it."""

    session_id: str
    teller_id: str
    state: State
    action: Action
    closed: bool
    decision: Decision
    questions_to_ask: list[str]
    questions_asked: list[str]
    unanswered: list[str]
    notice: Notice | None
    execute_refusal: str | None = Field(description="why executing is not allowed now; null: it is")
    supervisor_ids: list[str]
    steps: list[StepView]


class BatchRequest(BaseModel):
    """``events``: the events to screen; each is validated on its own."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, object]]


class BatchItem(_Body):
    index: int
    decision: Decision | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class BatchResponse(_Body):
    results: list[BatchItem]


class ExecutedResponse(_Body):
    event_id: str
    recorded: bool


class RuleInfo(_Body):
    id: str
    title_zh: str
    title_en: str
    action: Action


class PackInfo(_Body):
    name: str
    version: str
    content_hash: str
    rules: list[RuleInfo]


class Health(_Body):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class KeyRequest(_Body):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")]
    role: Literal["teller", "supervisor", "auditor", "admin"]


class KeyView(_Body):
    key_id: str
    name: str
    role: str
    created_at: str
    revoked_at: str | None


class KeyCreated(_Body):
    key_id: str
    name: str
    role: str
    key: str = Field(description="the whole key; shown only in this response")


# -- the case ledger (supervisors and auditors) ------------------------------------------------
CaseText = Annotated[str, Field(max_length=4000)]
CaseId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
]


class AmountIn(_Body):
    """An amount as the case officer gives it: a decimal string (yuan, at most 2 decimals)."""

    value: Annotated[str, Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,2})?$")]
    currency: Currency = Currency.CNY

    def to_money(self) -> Money:
        return Money.model_validate_json(
            json.dumps({"value": self.value, "currency": self.currency.value})
        )


class PartyIn(_Body):
    """A party as known to the officer; stored protected (keyed hash or mask), never raw."""

    role: PartyRole
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    id_number: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    phone: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    account: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    customer_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class CaseOpenRequest(_Body):
    case_type: Literal["complaint", "friction_complaint", "manual"] = Field(
        description="cases of screenings are opened by the intake, not by hand"
    )
    text: CaseText = ""
    case_id: CaseId | None = Field(default=None, description="default: a new id")
    source_case_id: CaseId | None = Field(
        default=None, description="the screening (decision case id) it concerns"
    )
    branch_id: CaseId | None = None
    typology: Annotated[str, Field(max_length=100)] | None = None
    parties: Annotated[list[PartyIn], Field(max_length=20)] = Field(default_factory=list)
    amount_at_risk: AmountIn | None = None
    assignee: CaseId | None = None
    occurred_on: dt.date | None = None
    at: AwareDatetime | None = Field(default=None, description="when received (default: now)")


class CaseNoteRequest(_Body):
    text: Annotated[str, Field(min_length=1, max_length=4000)]


class CaseAssignRequest(_Body):
    assignee: CaseId


class CaseVerdictRequest(_Body):
    verdict: Verdict
    text: CaseText = ""


class CaseAmountsRequest(_Body):
    prevented: AmountIn | None = None
    returned: AmountIn | None = None
    reported_to_police: bool | None = None
    text: CaseText = ""


class CaseCloseRequest(_Body):
    resolution: Resolution
    text: CaseText = ""
    prevented: AmountIn | None = None
    returned: AmountIn | None = None
    reported_to_police: bool | None = None


class CaseWritten(_Body):
    """A ledger entry written: its place in the chain and the case as it now stands."""

    case_id: str
    seq: int = Field(description="the entry's seq in the audit chain")
    sha256: str | None = Field(default=None, description="the evidence file's hash (attach)")
    case: dict[str, Any]


class CaseList(_Body):
    cases: list[dict[str, Any]]
