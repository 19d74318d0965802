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
    CASE_ENTRY = "case_entry"
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


class CaseType(StrEnum):
    """Why a case is in the ledger."""

    DECISION = "decision"  # opened from a screening at or above the configured action
    COMPLAINT = "complaint"  # a customer's complaint (about anything but guardrail's friction)
    FRICTION_COMPLAINT = "friction_complaint"  # a customer wrongly questioned or held
    MANUAL = "manual"  # opened by hand (a tip-off, a police request, a branch report)


class CaseEntryKind(StrEnum):
    """One entry of the case ledger. Kinds are only ever added."""

    OPENED = "opened"
    NOTE = "note"  # progress: what was done, said, learnt
    EVIDENCE_ATTACHED = "evidence_attached"  # a file, stored by content hash
    ASSIGNED = "assigned"
    VERDICT = "verdict"  # learnt later: the police confirm fraud, a complaint shows no fraud
    AMOUNTS = "amounts"  # money prevented from leaving / returned to the victim, as learnt
    CLOSED = "closed"


class Verdict(StrEnum):
    """What was established about a case, possibly long after the counter."""

    FRAUD_CONFIRMED = "fraud_confirmed"
    NOT_FRAUD = "not_fraud"
    UNKNOWN = "unknown"  # withdraws an earlier verdict


class Resolution(StrEnum):
    """How a case was closed."""

    FRAUD_PREVENTED = "fraud_prevented"
    FUNDS_RETURNED = "funds_returned"
    FRAUD_NOT_PREVENTED = "fraud_not_prevented"
    NO_FRAUD = "no_fraud"
    COMPLAINT_UPHELD = "complaint_upheld"
    COMPLAINT_REJECTED = "complaint_rejected"
    REFERRED_TO_POLICE = "referred_to_police"
    OTHER = "other"


class PartyRole(StrEnum):
    CUSTOMER = "customer"
    COUNTERPARTY = "counterparty"
    COMPLAINANT = "complainant"
    OTHER = "other"


class ProtectedParty(_Record):
    """A party to a case, its identifiers only in protected form (keyed hash or mask)."""

    role: PartyRole
    name: Protected | None = None
    id_number: Protected | None = None
    phone: Protected | None = None
    account: Protected | None = None
    customer_id: Protected | None = None


Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

# Which optional fields each entry kind may carry (``at``, ``by`` and ``case_id`` always).
_CASE_FIELDS: dict[CaseEntryKind, frozenset[str]] = {
    CaseEntryKind.OPENED: frozenset(
        {
            "case_type",
            "text",
            "source_case_id",
            "branch_id",
            "typology",
            "parties",
            "amount_at_risk",
            "assignee",
            "occurred_on",
        }
    ),
    CaseEntryKind.NOTE: frozenset({"text"}),
    CaseEntryKind.EVIDENCE_ATTACHED: frozenset(
        {"text", "evidence_sha256", "evidence_name", "evidence_bytes", "evidence_media_type"}
    ),
    CaseEntryKind.ASSIGNED: frozenset({"text", "assignee"}),
    CaseEntryKind.VERDICT: frozenset({"text", "verdict"}),
    CaseEntryKind.AMOUNTS: frozenset(
        {"text", "amount_prevented", "amount_returned", "reported_to_police"}
    ),
    CaseEntryKind.CLOSED: frozenset(
        {"text", "resolution", "amount_prevented", "amount_returned", "reported_to_police"}
    ),
}
_CASE_REQUIRED: dict[CaseEntryKind, frozenset[str]] = {
    CaseEntryKind.OPENED: frozenset({"case_type"}),
    CaseEntryKind.NOTE: frozenset({"text"}),
    CaseEntryKind.EVIDENCE_ATTACHED: frozenset({"evidence_sha256", "evidence_bytes"}),
    CaseEntryKind.ASSIGNED: frozenset({"assignee"}),
    CaseEntryKind.VERDICT: frozenset({"verdict"}),
    CaseEntryKind.AMOUNTS: frozenset(),
    CaseEntryKind.CLOSED: frozenset({"resolution"}),
}


class CaseEntryRecord(_Record):
    """One entry of the case ledger (a case is every entry sharing ``case_id``). Free text is
    redacted and parties are protected before the entry is built (see ``cases``)."""

    type: Literal["case_entry"] = "case_entry"
    case_id: Identifier
    entry: CaseEntryKind
    at: AwareDatetime
    by: Identifier  # the officer, supervisor or system that wrote the entry
    case_type: CaseType | None = None
    text: ShortText = ""
    source_case_id: Identifier | None = None  # the screening (decision case id) it came from
    branch_id: Identifier | None = None
    typology: Annotated[str, Field(max_length=100)] | None = None
    parties: tuple[ProtectedParty, ...] = ()
    amount_at_risk: Money | None = None
    occurred_on: dt.date | None = None
    assignee: Identifier | None = None
    verdict: Verdict | None = None
    resolution: Resolution | None = None
    amount_prevented: Money | None = None
    amount_returned: Money | None = None
    reported_to_police: bool | None = None
    evidence_sha256: Sha256Hex | None = None
    evidence_name: Annotated[str, Field(max_length=200)] | None = None
    evidence_bytes: Annotated[int, Field(ge=0)] | None = None
    evidence_media_type: Annotated[str, Field(max_length=100)] | None = None

    @model_validator(mode="after")
    def _fields_fit_the_entry(self) -> CaseEntryRecord:
        allowed = _CASE_FIELDS[self.entry]
        for name in _CASE_REQUIRED[self.entry]:
            if getattr(self, name) in (None, ""):
                raise ValueError(f"{name}: required for a {self.entry.value} entry")
        for name in _ALL_CASE_FIELDS - allowed:
            value = getattr(self, name)
            if value not in (None, "", ()):
                raise ValueError(f"{name}: not allowed on a {self.entry.value} entry")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v not in (None, "", [], ())}


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


_ALL_CASE_FIELDS = frozenset().union(*_CASE_FIELDS.values())


AnyPayload = DecisionRecord | SessionStepRecord | ShadowRecord | ControlRecord | CaseEntryRecord
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
