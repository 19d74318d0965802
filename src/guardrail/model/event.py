"""What the teller software sends: the customer, the account, the request, what the teller saw
and what the customer answered. Strict, immutable, and JSON round-trips exactly."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from guardrail.model.money import Money

MAX_TEXT = 2000  # free text (purpose, notes); longer input is refused, never truncated silently

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
]
RegionCode = Annotated[
    str, StringConstraints(min_length=2, max_length=32, pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,8}){0,3}$")
]
FreeText = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
AccountNumber = Annotated[
    str, StringConstraints(min_length=4, max_length=40, pattern=r"^[0-9A-Za-z\-]+$")
]
PhoneNumber = Annotated[
    str, StringConstraints(min_length=3, max_length=24, pattern=r"^\+?[0-9\- ]+$")
]
IdNumber = Annotated[str, StringConstraints(min_length=4, max_length=32, pattern=r"^[0-9A-Za-z]+$")]


# A transaction is screened as it happens: a timestamp ahead of the wall clock by more than a
# terminal's clock can plausibly drift, or before the system could have existed, is a fault
# (and one such timestamp would push history retention and blind the same-day rules).
MAX_CLOCK_SKEW = dt.timedelta(hours=1)
EARLIEST_TIMESTAMP = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def implausible_timestamp(value: dt.datetime, now: dt.datetime | None = None) -> str | None:
    """Why the aware ``value`` cannot be a real transaction's time, or None if it can.

    ``now`` defaults to the wall clock; ``MAX_CLOCK_SKEW`` ahead of it is still accepted."""
    latest = (now if now is not None else dt.datetime.now(dt.UTC)) + MAX_CLOCK_SKEW
    if value > latest:
        return (
            f"timestamp {value.isoformat()} is in the future (more than"
            f" {MAX_CLOCK_SKEW} ahead of now, {latest.isoformat(timespec='seconds')})"
        )
    if value < EARLIEST_TIMESTAMP:
        return f"timestamp {value.isoformat()} is before {EARLIEST_TIMESTAMP.date().isoformat()}"
    return None


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a time zone offset, e.g. 2025-03-01T10:15:00+08:00")
    problem = implausible_timestamp(value)
    if problem is not None:
        raise ValueError(problem)
    return value


@lru_cache(maxsize=256)
def _zone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {name!r} (expected an IANA name like 'Asia/Shanghai')"
    return None


def _known_zone(name: str) -> str:
    # Checked here, not when a feature first needs local time: a backend that never reads that
    # feature would otherwise screen the event as if nothing were wrong.
    problem = _zone_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


AwareDatetime = Annotated[dt.datetime, Field(strict=False), AfterValidator(_aware)]
LaxDate = Annotated[dt.date, Field(strict=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", use_enum_values=False)


class TransactionKind(str, Enum):
    CASH_WITHDRAWAL = "cash_withdrawal"
    CASH_DEPOSIT = "cash_deposit"
    TRANSFER = "transfer"
    REMITTANCE = "remittance"
    TERM_DEPOSIT_EARLY_WITHDRAWAL = "term_deposit_early_withdrawal"
    WEALTH_REDEMPTION = "wealth_redemption"
    INSURANCE_SURRENDER = "insurance_surrender"
    ACCOUNT_OPENING = "account_opening"
    CARD_ISSUANCE = "card_issuance"
    LIMIT_CHANGE = "limit_change"
    INBOUND_TRANSFER = "inbound_transfer"  # money coming in; ``counterparty`` is the sender
    INBOUND_REMITTANCE = "inbound_remittance"

    # The value's hash, computed in C: Enum's own is a Python call, and screening looks kinds
    # up in sets for every history record a window reads (equal members still hash alike).
    __hash__ = str.__hash__


class Direction(str, Enum):
    """Which way money moves for the customer."""

    OUT = "out"
    IN = "in"
    NONE = "none"

    __hash__ = str.__hash__  # in C, as TransactionKind's


DIRECTION_OF_KIND: dict[TransactionKind, Direction] = {
    TransactionKind.CASH_WITHDRAWAL: Direction.OUT,
    TransactionKind.CASH_DEPOSIT: Direction.IN,
    TransactionKind.TRANSFER: Direction.OUT,
    TransactionKind.REMITTANCE: Direction.OUT,
    TransactionKind.TERM_DEPOSIT_EARLY_WITHDRAWAL: Direction.OUT,
    TransactionKind.WEALTH_REDEMPTION: Direction.OUT,
    TransactionKind.INSURANCE_SURRENDER: Direction.OUT,
    TransactionKind.ACCOUNT_OPENING: Direction.NONE,
    TransactionKind.CARD_ISSUANCE: Direction.NONE,
    TransactionKind.LIMIT_CHANGE: Direction.NONE,
    TransactionKind.INBOUND_TRANSFER: Direction.IN,
    TransactionKind.INBOUND_REMITTANCE: Direction.IN,
}
INBOUND_KINDS = frozenset({TransactionKind.INBOUND_TRANSFER, TransactionKind.INBOUND_REMITTANCE})
OPENING_KINDS = frozenset({TransactionKind.ACCOUNT_OPENING, TransactionKind.CARD_ISSUANCE})


class Channel(str, Enum):
    COUNTER = "counter"
    ATM = "atm"
    MOBILE = "mobile"
    ONLINE = "online"
    SELF_SERVICE = "self_service"

    __hash__ = str.__hash__  # in C, as TransactionKind's


class PartyType(str, Enum):
    NATURAL_PERSON = "natural_person"
    NON_NATURAL_PERSON = "non_natural_person"


class Segment(str, Enum):
    MASS = "mass"
    AFFLUENT = "affluent"
    PRIVATE = "private"
    BUSINESS = "business"


class AccountClass(str, Enum):
    """PBOC personal account classes (2016): Class I full, II and III restricted."""

    I = "I"  # noqa: E741 - the regulation's own name
    II = "II"
    III = "III"
    CORPORATE = "corporate"


class PurposeCode(str, Enum):
    LIVING_EXPENSES = "living_expenses"
    MEDICAL = "medical"
    EDUCATION = "education"
    HOUSE_PURCHASE = "house_purchase"
    CAR_PURCHASE = "car_purchase"
    INVESTMENT = "investment"
    LOAN_REPAYMENT = "loan_repayment"
    BUSINESS = "business"
    FAMILY_SUPPORT = "family_support"
    GIFT = "gift"
    TRAVEL = "travel"
    PENSION = "pension"
    SALARY = "salary"
    DEPOSIT_TAKINGS = "deposit_takings"
    INSURANCE = "insurance"
    OTHER = "other"


class Relationship(str, Enum):
    SELF = "self"
    FAMILY = "family"
    FRIEND = "friend"
    BUSINESS = "business"
    MET_ONLINE = "met_online"
    OFFICIAL = "official"  # claims to be police, prosecutor, bank or regulator staff
    UNKNOWN = "unknown"


class AccountPurpose(str, Enum):
    """What a new account or card is for, as the customer says when opening it."""

    SALARY = "salary"
    SAVINGS = "savings"
    PENSION = "pension"
    BUSINESS = "business"
    STUDENT = "student"
    SOCIAL_SECURITY = "social_security"
    OTHER = "other"
    CANNOT_SAY = "cannot_say"  # cannot say what the account is for (断卡: a rented account)


class ThirdPartyRole(str, Enum):
    COMPANION = "companion"
    FAMILY = "family"
    AGENT = "agent"  # a "rights agent", a surrender or loan agent
    EMPLOYER = "employer"
    INTERPRETER = "interpreter"
    GUARDIAN = "guardian"
    OTHER = "other"


class DocumentKind(str, Enum):
    """Documents the customer shows to support the request."""

    INVOICE = "invoice"  # a bill or invoice, e.g. the hospital's
    CONTRACT = "contract"  # a purchase, lease or loan contract
    PAYEE_ID = "payee_id"  # the payee's identity document
    TUITION_NOTICE = "tuition_notice"
    EMPLOYMENT_PROOF = "employment_proof"
    COURT_DOCUMENT = "court_document"
    OTHER = "other"


class Branch(_Frozen):
    id: Identifier
    region: RegionCode = Field(
        description="e.g. CN-ZJ (Zhejiang), CN-HE (Hebei), CN-GD-SZ (Shenzhen)"
    )
    timezone: Annotated[
        str, StringConstraints(min_length=1, max_length=64), AfterValidator(_known_zone)
    ] = "Asia/Shanghai"


class Customer(_Frozen):
    id: Identifier
    party_type: PartyType = PartyType.NATURAL_PERSON
    birth_date: LaxDate | None = None
    segment: Segment = Segment.MASS
    region: RegionCode | None = None
    name: PersonName | None = None
    id_number: IdNumber | None = None
    phone: PhoneNumber | None = None


class Account(_Frozen):
    id: AccountNumber
    account_class: AccountClass = AccountClass.I
    opened_on: LaxDate
    last_activity_on: LaxDate | None = None


class Counterparty(_Frozen):
    account: AccountNumber | None = None
    name: PersonName | None = None
    bank: Annotated[str, StringConstraints(max_length=100)] | None = None
    region: RegionCode | None = None
    same_name: bool | None = Field(default=None, description="payee name equals the customer's")
    party_type: PartyType = PartyType.NATURAL_PERSON
    phone: PhoneNumber | None = None


class ThirdParty(_Frozen):
    """Someone at the counter with the customer."""

    role: ThirdPartyRole
    name: PersonName | None = None
    id_number: IdNumber | None = None
    phone: PhoneNumber | None = None
    relationship: Relationship | None = None
    answers_for_customer: bool = False


class Document(_Frozen):
    """A document shown at the counter; ``verified`` when the teller checked it."""

    kind: DocumentKind
    verified: bool = False
    description: Annotated[str, StringConstraints(max_length=200)] = ""


class FamilyConfirmation(_Frozen):
    """A family member present or reached by phone, and whether they confirm the request."""

    present: bool = False
    reached_by_phone: bool = False
    confirms: bool | None = None  # None: not (yet) asked
    relationship: Relationship = Relationship.FAMILY

    @model_validator(mode="after")
    def _reached(self) -> FamilyConfirmation:
        if self.confirms is not None and not (self.present or self.reached_by_phone):
            raise ValueError("family cannot confirm unless present or reached by phone")
        return self


class AccountOpening(_Frozen):
    """What the teller keys when a customer opens an account or asks for a card."""

    purpose: AccountPurpose | None = None
    purpose_text: FreeText = ""
    accounts_at_other_banks: Annotated[int, Field(ge=0, le=100)] | None = None
    opened_elsewhere_last_30d: Annotated[int, Field(ge=0, le=100)] | None = Field(
        default=None, description="accounts or cards opened at other banks in the last 30 days"
    )
    accompanied: bool = False  # someone came with the customer (see ``third_parties``)


class Purpose(_Frozen):
    code: PurposeCode
    text: FreeText = ""


class Observations(_Frozen):
    """What the teller or lobby manager saw. Unobserved means false."""

    on_phone: bool = False
    earpiece: bool = False
    reading_from_phone: bool = False
    companion_answers: bool = False
    nervous: bool = False
    hurried: bool = False
    evasive: bool = False
    screen_sharing: bool = False
    demands_instant_arrival: bool = False
    purpose_changed: bool = False
    refuses_family_contact: bool = False
    third_party_agent_present: bool = False
    payee_only_takes_cash: bool = False
    group_with_same_purpose: bool = False
    reading_from_notes: bool = False  # reads answers from a note or a message


class Answers(_Frozen):
    """Answers to the counter questionnaire. ``None`` means not (yet) asked."""

    stated_purpose: PurposeCode | None = None
    purpose_detail: FreeText | None = None
    knows_payee: bool | None = None
    payee_relationship: Relationship | None = None
    met_payee_in_person: bool | None = None
    instructed_by_other: bool | None = None
    told_to_keep_secret: bool | None = None
    family_aware: bool | None = None
    promised_return_pct: Annotated[int, Field(ge=0, le=10000)] | None = None
    paid_to_open: bool | None = None  # someone pays or rewards the customer for the account
    lends_account: bool | None = None  # will hand the card or its login to someone else


class Event(_Frozen):
    """One request at the counter, as the teller software sends it for screening."""

    event_id: Identifier
    kind: TransactionKind
    amount: Money
    channel: Channel = Channel.COUNTER
    timestamp: AwareDatetime
    branch: Branch
    teller_id: Identifier
    customer: Customer
    account: Account | None = None
    counterparty: Counterparty | None = None
    purpose: Purpose | None = None
    cross_border: bool = False
    new_daily_limit: Money | None = None
    observations: Observations = Observations()
    answers: Answers = Answers()
    notes: FreeText = ""
    opening: AccountOpening | None = None
    third_parties: Annotated[tuple[ThirdParty, ...], Field(max_length=10)] = ()
    documents: Annotated[tuple[Document, ...], Field(max_length=20)] = ()
    family: FamilyConfirmation | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Event:
        if self.opening is not None and self.kind not in OPENING_KINDS:
            raise ValueError(
                f"'opening' belongs to account_opening or card_issuance, not {self.kind.value}"
            )
        return self

    @property
    def direction(self) -> Direction:
        return DIRECTION_OF_KIND[self.kind]


def event_json_schema() -> dict[str, object]:
    """The JSON Schema that ``guardrail schema`` prints."""
    return Event.model_json_schema(mode="validation")
