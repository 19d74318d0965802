"""The fields a condition may name, with their types. Conditions are checked against this
catalogue at load time, so a misspelt field or a number compared with a string never runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum

from guardrail.lang.declarations import WindowSpec
from guardrail.model.event import (
    AccountClass,
    AccountPurpose,
    Channel,
    Direction,
    DocumentKind,
    PartyType,
    PurposeCode,
    Relationship,
    Segment,
    TransactionKind,
)
from guardrail.model.money import Currency


class FieldType(str, Enum):
    BOOL = "bool"
    INT = "int"  # counts, ages, days, percentages
    MONEY = "money"  # integer fen inside engines; literals are written in yuan
    ENUM = "enum"  # one of a closed set of strings
    STRING = "string"  # identifiers and codes: equality, lists, watchlists
    TEXT = "text"  # free text: only ``matches lexicon.NAME``


class FieldSource(str, Enum):
    """Where the context layer gets a field from; also how costly it is to read."""

    EVENT = "event"  # a field of the event itself
    DERIVED = "derived"  # computed from the event alone (ages, local dates)
    HISTORY = "history"  # computed from the customer's executed history
    WINDOW = "window"  # a windowed aggregate the pack declares


LOCAL_DATE_KEY = "event.local_date"  # internal: yyyymmdd in the branch's zone, for effective dates
REGION_KEY_PREFIX = "event.branch_region/"  # internal: the branch region cut to N parts


def region_key(depth: int) -> str:
    """Internal feature: the branch's region code cut to ``depth`` parts (``CN-GD-SZ`` at 2 is
    ``CN-GD``), so a pack scoped to a region also covers the regions inside it."""
    return f"{REGION_KEY_PREFIX}{depth}"


@dataclass(frozen=True, slots=True)
class FieldInfo:
    name: str
    type: FieldType
    description: str
    values: tuple[str, ...] = ()  # allowed values of an ENUM field
    non_negative: bool = False  # lets the checker spot ``amount >= 0`` as always true
    source: FieldSource = FieldSource.EVENT


def _enum(name: str, enum: type[Enum], description: str) -> FieldInfo:
    return FieldInfo(name, FieldType.ENUM, description, tuple(str(m.value) for m in enum))


def _flag(name: str, description: str) -> FieldInfo:
    return FieldInfo(name, FieldType.BOOL, description)


def _count(name: str, description: str) -> FieldInfo:
    return FieldInfo(name, FieldType.INT, description, non_negative=True)


def _money(name: str, description: str) -> FieldInfo:
    return FieldInfo(name, FieldType.MONEY, description, non_negative=True)


# The answers rules compare as values (``purpose_detail``, free text, is read through lexicons).
ANSWERS = (
    "stated_purpose",
    "knows_payee",
    "payee_relationship",
    "met_payee_in_person",
    "instructed_by_other",
    "told_to_keep_secret",
    "family_aware",
    "promised_return_pct",
    "paid_to_open",
    "lends_account",
)

OBSERVATIONS = (
    "on_phone",
    "earpiece",
    "reading_from_phone",
    "companion_answers",
    "nervous",
    "hurried",
    "evasive",
    "screen_sharing",
    "demands_instant_arrival",
    "purpose_changed",
    "refuses_family_contact",
    "third_party_agent_present",
    "payee_only_takes_cash",
    "group_with_same_purpose",
    "reading_from_notes",
)
DOCUMENT_KINDS = tuple(kind.value for kind in DocumentKind)

_EVENT_AND_COMPUTED: tuple[FieldInfo, ...] = (
    _enum("kind", TransactionKind, "what the customer asks for"),
    _enum("direction", Direction, "out, in or none, derived from the kind"),
    _enum("channel", Channel, "where the request was made"),
    _money("amount", "the requested amount (yuan in rule text)"),
    _enum("currency", Currency, "currency of the amount"),
    _flag("cross_border", "a cross-border remittance"),
    _money("new_daily_limit", "requested new daily limit of a limit change"),
    FieldInfo("branch.id", FieldType.STRING, "branch identifier"),
    FieldInfo("branch.region", FieldType.STRING, "branch region code, e.g. CN-ZJ"),
    FieldInfo("teller_id", FieldType.STRING, "teller identifier"),
    FieldInfo("customer.id", FieldType.STRING, "customer identifier"),
    FieldInfo("customer.id_number", FieldType.STRING, "ID document number"),
    FieldInfo("customer.phone", FieldType.STRING, "customer phone number"),
    _enum("customer.party_type", PartyType, "natural or non-natural person"),
    _enum("customer.segment", Segment, "customer segment"),
    FieldInfo("customer.region", FieldType.STRING, "customer's home region code"),
    _count("customer.age", "age in whole years on the event's local date"),
    _flag(
        "customer.is_elderly",
        "aged 60 or over (Law on the Protection of the Rights of the Elderly, art. 2)",
    ),
    FieldInfo("account.id", FieldType.STRING, "the customer's account number"),
    _enum("account.account_class", AccountClass, "PBOC account class"),
    _count("account.age_days", "days since the account was opened"),
    _count("account.days_since_last_activity", "days since the account's last activity"),
    FieldInfo("counterparty.account", FieldType.STRING, "payee account number"),
    FieldInfo("counterparty.bank", FieldType.STRING, "payee bank"),
    FieldInfo("counterparty.region", FieldType.STRING, "payee region code"),
    FieldInfo("counterparty.phone", FieldType.STRING, "payee phone number"),
    _flag("counterparty.same_name", "payee name equals the customer's"),
    _enum("counterparty.party_type", PartyType, "personal or corporate payee"),
    _flag("counterparty.other_region", "payee's province differs from the branch's"),
    _flag("counterparty.first_seen", "no earlier transaction of this customer to this payee"),
    _enum("purpose.code", PurposeCode, "stated purpose code"),
    FieldInfo("purpose.text", FieldType.TEXT, "stated purpose, free text"),
    FieldInfo("notes", FieldType.TEXT, "teller's notes"),
    FieldInfo("any_text", FieldType.TEXT, "purpose text, purpose detail answer and notes together"),
    *(
        _flag(f"observations.{name}", f"teller observed: {name.replace('_', ' ')}")
        for name in OBSERVATIONS
    ),
    _enum("answers.stated_purpose", PurposeCode, "purpose the customer gives when asked"),
    FieldInfo(
        "answers.purpose_detail", FieldType.TEXT, "the customer's own words about the purpose"
    ),
    _flag("answers.knows_payee", "the customer knows the payee"),
    _enum("answers.payee_relationship", Relationship, "relationship to the payee"),
    _flag("answers.met_payee_in_person", "has met the payee in person"),
    _flag("answers.instructed_by_other", "someone told the customer to do this"),
    _flag("answers.told_to_keep_secret", "the customer was told to keep it secret"),
    _flag("answers.family_aware", "the customer's family knows"),
    _count("answers.promised_return_pct", "annual return the customer was promised, percent"),
    _flag("answers.paid_to_open", "someone pays or rewards the customer for opening the account"),
    _flag("answers.lends_account", "the customer will hand the card or its login to someone"),
    _enum("opening.purpose", AccountPurpose, "what a new account or card is for"),
    FieldInfo("opening.purpose_text", FieldType.TEXT, "the account's purpose, customer's words"),
    _count("opening.accounts_at_other_banks", "accounts the customer holds at other banks"),
    _count("opening.opened_elsewhere_last_30d", "accounts or cards opened elsewhere in 30 days"),
    _flag("opening.accompanied", "someone came with the customer to open the account"),
    _flag("third_party.present", "someone is at the counter with the customer"),
    _count("third_party.count", "how many people are with the customer"),
    _flag("third_party.answers_for_customer", "a third party answers for the customer"),
    _flag("third_party.agent_present", "an agent (rights, surrender or loan agent) is present"),
    _flag("third_party.non_family_present", "someone other than family or guardian is present"),
    FieldInfo("third_party.phone", FieldType.STRING, "phone of a third party (any, in watchlists)"),
    FieldInfo(
        "third_party.id_number", FieldType.STRING, "ID number of a third party (any, in watchlists)"
    ),
    *(
        _flag(f"documents.{kind}", f"the customer showed: {kind.replace('_', ' ')}")
        for kind in DOCUMENT_KINDS
    ),
    _flag("documents.any_verified", "the teller verified at least one document shown"),
    _flag("family.present", "a family member is at the counter"),
    _flag("family.reached_by_phone", "a family member was reached by phone"),
    _flag("family.confirms", "the family member confirms the request (unknown until asked)"),
    _flag("family.confirmed", "a family member present or reached by phone confirms the request"),
    _money("history.inbound_24h", "credits into the account in the 24h before the event"),
    _count("history.inbound_24h_pct", "inbound_24h as a percentage of this amount"),
    _count("history.outbound_count_24h", "outgoing transactions in the 24h before the event"),
    _count("history.same_payee_count_today", "earlier transactions to the same payee today"),
    _count("event.local_hour", "hour of the event in the branch's time zone"),
)

# Fields the context layer computes rather than reads off the event.
_COMPUTED = {
    "customer.age": FieldSource.DERIVED,
    "customer.is_elderly": FieldSource.DERIVED,
    "account.age_days": FieldSource.DERIVED,
    "account.days_since_last_activity": FieldSource.DERIVED,
    "counterparty.other_region": FieldSource.DERIVED,
    "event.local_hour": FieldSource.DERIVED,
    "counterparty.first_seen": FieldSource.HISTORY,
    "history.inbound_24h": FieldSource.HISTORY,
    "history.inbound_24h_pct": FieldSource.HISTORY,
    "history.outbound_count_24h": FieldSource.HISTORY,
    "history.same_payee_count_today": FieldSource.HISTORY,
}
BASE_FIELDS: tuple[FieldInfo, ...] = tuple(
    replace(info, source=_COMPUTED[info.name]) if info.name in _COMPUTED else info
    for info in _EVENT_AND_COMPUTED
)


class Catalog:
    """All fields visible to a pack: the event's fields plus the pack's windows."""

    def __init__(self, fields: Iterable[FieldInfo]) -> None:
        self._fields: dict[str, FieldInfo] = {f.name: f for f in fields}

    @classmethod
    def for_pack(cls, windows: Mapping[str, WindowSpec]) -> Catalog:
        window_fields = [
            FieldInfo(
                f"window.{spec.name}",
                FieldType.MONEY if spec.is_money else FieldType.INT,
                spec.description or f"{spec.aggregate.value} over {spec.span.value}",
                non_negative=True,
                source=FieldSource.WINDOW,
            )
            for spec in windows.values()
        ]
        return cls([*BASE_FIELDS, *window_fields])

    def get(self, name: str) -> FieldInfo | None:
        return self._fields.get(name)

    def names(self) -> list[str]:
        return list(self._fields)

    def __contains__(self, name: object) -> bool:
        return name in self._fields


_SOURCES = {info.name: info.source for info in BASE_FIELDS}


def field_source(key: str) -> FieldSource:
    """Where the feature ``key`` comes from (fields of every pack, windows and internal keys)."""
    if key.startswith("window."):
        return FieldSource.WINDOW
    if key == LOCAL_DATE_KEY or key.startswith(REGION_KEY_PREFIX):
        return FieldSource.DERIVED
    return _SOURCES.get(key, FieldSource.EVENT)
