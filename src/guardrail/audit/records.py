"""What the audit log stores: decision records, counter-session steps, and the envelope that
chains them. Payloads hold personal data only in protected form (see ``masking``).

The canonical encoding (:func:`canonical_json`) is JSON with sorted keys, no whitespace, UTF-8;
record hashes are computed over exactly the stored bytes, so a later schema change never
breaks verification of old records.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
    model_validator,
)

from guardrail.model import (
    AccountClass,
    Action,
    Answers,
    Channel,
    Document,
    Failure,
    FamilyConfirmation,
    Money,
    Obligation,
    Observations,
    PackRef,
    PartyType,
    PurposeCode,
    ScorePart,
    Segment,
    ThirdPartyRole,
    TransactionKind,
)
from guardrail.model.decision import AdjustmentKind
from guardrail.model.event import Identifier
from guardrail.model.session import (
    ACTION_CHANGE_KINDS,
    SUPERVISOR_KINDS,
    Outcome,
    StepKind,
)

JsonScalar = bool | int | str | None
ShortText = Annotated[str, Field(max_length=4000)]
Protected = Annotated[str, Field(max_length=200)]


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a time zone offset")
    return value


AwareDatetime = Annotated[dt.datetime, AfterValidator(_aware)]


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN: the one encoding that is hashed."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


class RecordKind(StrEnum):
    DECISION = "decision"
    SESSION_STEP = "session_step"
    SHADOW = "shadow"
    CONTROL = "control"


class ControlKind(StrEnum):
    """Changes to how rules apply, made by people or by a breaker."""

    SNOOZE_ADDED = "snooze_added"
    SNOOZE_REMOVED = "snooze_removed"
    BREAKER_TRIPPED = "breaker_tripped"
    BREAKER_RESET = "breaker_reset"
    PACK_APPROVED = "pack_approved"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProtectedCustomer(_Record):
    id: Protected | None
    party_type: PartyType
    birth_date: Protected | None = None
    segment: Segment
    region: str | None = None
    name: Protected | None = None
    id_number: Protected | None = None
    phone: Protected | None = None


class ProtectedAccount(_Record):
    id: Protected | None
    account_class: AccountClass
    opened_on: dt.date
    last_activity_on: dt.date | None = None


class ProtectedCounterparty(_Record):
    account: Protected | None = None
    name: Protected | None = None
    bank: str | None = None
    region: str | None = None
    same_name: bool | None = None
    party_type: PartyType
    phone: Protected | None = None


class ProtectedEvent(_Record):
    """The screened event with personal data protected. Only fields listed here are kept:
    a field added to ``Event`` later is left out until it is classified here."""

    event_id: Identifier
    kind: TransactionKind
    amount: Money
    amount_fen: int
    channel: Channel
    timestamp: AwareDatetime
    branch_id: Identifier
    branch_region: str
    teller_id: Identifier
    customer: ProtectedCustomer
    account: ProtectedAccount | None = None
    counterparty: ProtectedCounterparty | None = None
    purpose_code: PurposeCode | None = None
    purpose_text: ShortText = ""
    cross_border: bool = False
    new_daily_limit: Money | None = None
    observations: Observations = Observations()
    answers: Answers = Answers()
    notes: ShortText = ""
    documents: tuple[Document, ...] = ()  # kinds shown and whether verified: no personal data
    family: FamilyConfirmation | None = None
    third_party_roles: tuple[ThirdPartyRole, ...] = ()  # who was present; identities left out


class EvidenceRecord(_Record):
    feature: str
    value: JsonScalar
    detail: ShortText = ""


class HitRecord(_Record):
    rule_id: str
    title_en: str = ""
    title_zh: str = ""
    action: Action
    obligations: tuple[Obligation, ...] = ()
    evidence: tuple[EvidenceRecord, ...] = ()
    source: str = ""
    tags: tuple[str, ...] = ()


class ClearedRecord(_Record):
    """A rule that matched and was cleared, with the values that cleared it."""

    rule_id: str
    action: Action
    evidence: tuple[EvidenceRecord, ...] = ()
    cleared_by: tuple[EvidenceRecord, ...] = ()


class AdjustmentRecord(_Record):
    """A snooze or circuit breaker that lowered a hit's action (message redacted)."""

    kind: AdjustmentKind
    rule_id: str
    from_action: Action
    to_action: Action
    message: ShortText = ""
    until: AwareDatetime | None = None
    approver: str | None = None


class DecisionRecord(_Record):
    """One screening decision: the protected event, the pack, every hit, the action."""

    type: Literal["decision"] = "decision"
    case_id: Identifier
    event: ProtectedEvent
    pack: PackRef
    backend: str
    action: Action
    obligations: tuple[Obligation, ...] = ()
    hits: tuple[HitRecord, ...] = ()
    failures: tuple[Failure, ...] = ()
    elapsed_us: int = Field(default=0, ge=0)
    teller_id: Identifier
    supervisor_id: Identifier | None = None
    score: int = Field(default=0, ge=0)
    score_parts: tuple[ScorePart, ...] = ()
    cleared: tuple[ClearedRecord, ...] = ()
    watchlists: dict[str, str] = Field(default_factory=dict)  # list name -> content version
    adjustments: tuple[AdjustmentRecord, ...] = ()

    @model_serializer(mode="wrap")
    def _omit_empty_additions(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out when empty, so a decision without them encodes to the same bytes as before
        # the fields existed.
        data: dict[str, Any] = handler(self)
        for name in ("watchlists", "adjustments"):
            if not data.get(name):
                data.pop(name, None)
        return data

    @property
    def occurred_at(self) -> dt.datetime:
        return self.event.timestamp


_NEEDS_OUTCOME = {StepKind.OUTCOME_RECORDED}
_MAY_HAVE_OUTCOME = {StepKind.OUTCOME_RECORDED, StepKind.CLOSED}


class SessionStepRecord(_Record):
    """One step of a counter session, linked to its case by ``case_id``."""

    type: Literal["session_step"] = "session_step"
    case_id: Identifier
    step: StepKind
    at: AwareDatetime
    teller_id: Identifier
    supervisor_id: Identifier | None = None
    event_id: Identifier | None = None
    outcome: Outcome | None = None
    confirmed_fraud: bool | None = None
    override_from: Action | None = None
    override_to: Action | None = None
    reason: ShortText = ""
    question_ids: tuple[Annotated[str, Field(max_length=100)], ...] = ()
    answers: Answers | None = None
    amount: Money | None = None
    # step_refused only: the name of the step that was attempted (e.g. ``record_outcome``)
    refused_step: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SessionStepRecord:
        step = self.step
        if step in _NEEDS_OUTCOME and self.outcome is None:
            raise ValueError(f"outcome: required when step is {step.value}")
        if step not in _MAY_HAVE_OUTCOME and self.outcome is not None:
            raise ValueError(
                f"outcome: only allowed on outcome_recorded or closed, not {step.value}"
            )
        if step not in _MAY_HAVE_OUTCOME and self.confirmed_fraud is not None:
            raise ValueError(
                f"confirmed_fraud: only allowed on outcome_recorded or closed, not {step.value}"
            )
        if step in SUPERVISOR_KINDS and self.supervisor_id is None:
            raise ValueError(f"supervisor_id: required for a {step.value}")
        if step in (StepKind.SUPERVISOR_OVERRIDE, StepKind.TELLER_OVERRIDE):
            if self.override_to is None:
                raise ValueError(f"override_to: required for a {step.value}")
        elif step not in ACTION_CHANGE_KINDS and (
            self.override_to is not None or self.override_from is not None
        ):
            raise ValueError(
                "override_from/override_to: only allowed on "
                + ", ".join(sorted(kind.value for kind in ACTION_CHANGE_KINDS))
            )
        if (
            step is StepKind.SUPERVISOR_APPROVED
            and self.override_from is not None
            and self.override_to is not None
            and self.override_from != self.override_to
        ):
            raise ValueError("override_to: an approval leaves the action as it stands (from == to)")
        if step is StepKind.STEP_REFUSED:
            if self.refused_step is None:
                raise ValueError("refused_step: required for a step_refused")
        elif self.refused_step is not None:
            raise ValueError(f"refused_step: only allowed on step_refused, not {step.value}")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_refusal(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left out when empty, so every other step encodes to the same bytes as before the
        # field existed.
        data: dict[str, Any] = handler(self)
        if data.get("refused_step") is None:
            data.pop("refused_step", None)
        return data

    @property
    def occurred_at(self) -> dt.datetime:
        return self.at


class ShadowRecord(_Record):
    """A candidate pack's decision beside the live one for the same event; never acted on."""

    type: Literal["shadow"] = "shadow"
    case_id: Identifier
    event_id: Identifier
    occurred: AwareDatetime
    kind: TransactionKind
    live_pack: PackRef
    shadow_pack: PackRef
    live_action: Action
    shadow_action: Action
    live_obligations: tuple[Obligation, ...] = ()
    shadow_obligations: tuple[Obligation, ...] = ()
    live_rules: tuple[str, ...] = ()
    shadow_rules: tuple[str, ...] = ()
    shadow_failed: bool = False

    @property
    def agrees(self) -> bool:
        return self.live_action == self.shadow_action and set(self.live_obligations) == set(
            self.shadow_obligations
        )

    @property
    def occurred_at(self) -> dt.datetime:
        return self.occurred


class ControlRecord(_Record):
    """A snooze added or removed, a breaker tripped or reset, a pack approved: who, why."""

    type: Literal["control"] = "control"
    case_id: Identifier
    control: ControlKind
    at: AwareDatetime
    actor: Annotated[str, Field(min_length=1, max_length=100)]  # approver id, or "breaker"
    rule_id: str | None = None
    entity: str | None = None  # customer, account or payee
    entity_ref: Protected | None = None  # keyed hash of the entity value, never the value
    until: AwareDatetime | None = None
    reason: ShortText = ""
    pack: PackRef | None = None
    detail: ShortText = ""

    @property
    def occurred_at(self) -> dt.datetime:
        return self.at


AnyPayload = DecisionRecord | SessionStepRecord | ShadowRecord | ControlRecord
Payload = Annotated[AnyPayload, Field(discriminator="type")]
PAYLOAD_ADAPTER: TypeAdapter[AnyPayload] = TypeAdapter(Payload)


def encode_payload(payload: AnyPayload) -> bytes:
    """The canonical bytes of a payload, as stored and hashed."""
    return canonical_json(payload.model_dump(mode="json"))


def decode_payload(data: str | bytes) -> AnyPayload:
    """Parse stored payload bytes back into a record model."""
    return PAYLOAD_ADAPTER.validate_json(data)


class AuditRecord(_Record):
    """A payload in its place in the chain."""

    seq: int = Field(ge=1)
    recorded_at: str
    kind: RecordKind
    case_id: str
    prev_hash: str
    record_hash: str
    payload: Payload
